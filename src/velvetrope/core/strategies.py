"""Strategies: what a credential *is*, whatever carries it (the transport's concern).

A way in to velvetrope is a backend: a name, a transport (a cookie, a header) and a
strategy. The strategy turns what the transport found, a
:class:`~velvetrope.core.credentials.Presented` (the credential, and for bound
credentials the proof that binds it to the request), into a
:class:`~velvetrope.core.principal.Principal`, ends it, and lists and ends the devices
that hold credentials of its kind. Three ship with velvetrope:

* :class:`SessionStrategy`: an opaque session ID, looked up on every request.
* :class:`DeviceBoundSessionStrategy`: the same, and a session bound to a device key
  (DBSC) also needs its short-lived bound cookie (``Presented.proof``).
* :class:`AccessTokenStrategy`: a signed access token (JWT) of a refresh family,
  verified without a lookup; a DPoP-bound one (``cnf.jkt``) only with a proof by its
  key. Its devices are the refresh families.

Write your own (an API key, a client certificate) against :class:`Strategy` and add a
backend with it (``Velvetrope.add_backend``). Most read ``credential.value`` only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Protocol

from velvetrope.core.binding.dbsc import SessionBinding
from velvetrope.core.binding.dpop import DPoPProofs, dpop_challenge
from velvetrope.core.credentials import Presented
from velvetrope.core.devices import Device
from velvetrope.core.principal import Principal
from velvetrope.core.sessions import SessionService
from velvetrope.core.tokens.service import TokenService
from velvetrope.errors import InvalidToken, SessionNotFound

__all__ = ["AccessTokenStrategy", "DeviceBoundSessionStrategy", "SessionStrategy", "Strategy"]


class Strategy(Protocol):
    """What a credential is: how to verify it, end it, and list its devices."""

    async def authenticate(self, credential: Presented, *, method: str) -> Principal:
        """Verify ``credential``; the per-request check.

        Args:
            credential: What the transport read: ``credential.value`` is the session
                ID, token or key; bound credentials also carry ``proof`` (and, for DPoP,
                the ``htm`` and ``htu`` it must be signed for).
            method: The backend's name, for :attr:`Principal.method`.

        Raises:
            NotAuthenticated: The credential is not valid (a subclass says why;
                :class:`~velvetrope.errors.InvalidToken` for tokens).
            StoreUnavailable: The check could not be made (the request fails closed).
        """
        ...

    async def destroy(self, principal: Principal) -> None:
        """End the credential behind ``principal`` (sign-out); idempotent."""
        ...

    async def devices(self, user_id: str) -> Sequence[Device]:
        """The user's live devices holding credentials of this kind."""
        ...

    async def end_device(self, user_id: str, handle: str) -> bool:
        """End the user's device with ``handle``; return whether it was one of these."""
        ...


class SessionStrategy:
    """Server-side sessions: the credential is the session ID (see ``SessionService``)."""

    def __init__(self, sessions: SessionService) -> None:
        self._sessions = sessions

    async def authenticate(self, credential: Presented, *, method: str) -> Principal:
        """Resolve a session ID: idle and absolute deadlines, then the principal."""
        session = await self._sessions.resolve(credential.value)
        return Principal(
            user_id=session.user_id,
            method=method,
            handle=session.handle,
            session=session,
            email=session.email,
            claims=session.claims,
        )

    async def destroy(self, principal: Principal) -> None:
        """End the principal's session (nothing happens if it already ended)."""
        with contextlib.suppress(SessionNotFound):
            await self._sessions.end_by_handle(principal.user_id, principal.handle)

    async def devices(self, user_id: str) -> Sequence[Device]:
        """The user's live sessions."""
        return [Device.of_session(s) for s in await self._sessions.list(user_id)]

    async def end_device(self, user_id: str, handle: str) -> bool:
        """End the user's session with this handle, if there is one."""
        try:
            await self._sessions.end_by_handle(user_id, handle)
        except SessionNotFound:
            return False
        return True


class DeviceBoundSessionStrategy(SessionStrategy):
    """Sessions that browsers bind to a device key (DBSC): a bound session also needs its
    live bound cookie, and under ``require`` an unbound one is refused after the grace
    (see :class:`~velvetrope.core.binding.dbsc.SessionBinding`)."""

    def __init__(self, sessions: SessionService, binding: SessionBinding) -> None:
        super().__init__(sessions)
        self.binding = binding

    async def authenticate(self, credential: Presented, *, method: str) -> Principal:
        """Resolve the session ID, then check its bound cookie (``credential.proof``).

        Raises:
            SessionInvalid, SessionExpired: Not a live session.
            DeviceBindingRequired: Bound, and no live bound cookie; or unbound under ``require``.
        """
        principal = await super().authenticate(credential, method=method)
        assert principal.session is not None  # noqa: S101 - a session made it
        self.binding.check(principal.session, credential.proof)
        return principal


class AccessTokenStrategy:
    """Access tokens (RFC 9068 JWTs) of refresh families: verified, never looked up.

    With ``proofs``, DPoP too: a token bound to a key (``cnf.jkt``) passes only with a
    proof by that key for this request (``credential.proof``); sent as a bearer token
    it is refused with the DPoP challenge (RFC 9449 section 7.2). Under the ``require``
    policy an unbound token is refused as well.
    """

    def __init__(self, tokens: TokenService, proofs: DPoPProofs | None = None) -> None:
        self._tokens = tokens
        self._proofs = proofs

    async def authenticate(self, credential: Presented, *, method: str) -> Principal:
        """Verify the token's signature and claims, then the in-process revocations, then
        the DPoP proof if the token is bound or comes with one.

        Raises:
            InvalidToken: Not a valid token, or (with its DPoP challenge) a bound token
                without a proof by its key.
            InvalidDPoPProof, UseDPoPNonce: The proof fails a check.
        """
        proofs = self._proofs
        try:
            claims = await self._tokens.verify(credential.value)
        except InvalidToken as exc:
            if credential.proof is None or proofs is None:
                raise
            raise exc.challenged(proofs.challenge("invalid_token")) from None
        principal = Principal(
            user_id=claims.sub,
            method=method,
            handle=claims.sid,
            token=claims,
            email=claims.email,
            claims=claims.claims,
        )
        if credential.proof is None:
            if claims.jkt is None and (proofs is None or proofs.policy.mode != "require"):
                return principal
            challenge = proofs.challenge("invalid_token") if proofs else dpop_challenge()
            raise InvalidToken("DPoP proof missing").challenged(challenge)
        if proofs is None or not proofs.policy.enabled:
            raise InvalidToken("DPoP is off")
        if claims.jkt is None:  # a bearer token cannot be upgraded by a proof
            raise InvalidToken("token not bound").challenged(proofs.challenge("invalid_token"))
        await proofs.verify(
            credential.proof,
            htm=credential.htm,
            htu=credential.htu,
            access_token=credential.value,
            bound_to=claims.jkt,
        )
        return principal

    async def destroy(self, principal: Principal) -> None:
        """Revoke the principal's family (the device) and deny its token at once."""
        await self._tokens.revoke_family(principal.handle)
        token = principal.token
        if token is not None:
            await self._tokens.revocations.revoke_jti(token.jti, until=token.expires_at)

    async def devices(self, user_id: str) -> Sequence[Device]:
        """The user's live refresh families."""
        return [Device.of_family(f) for f in await self._tokens.refresh.list(user_id)]

    async def end_device(self, user_id: str, handle: str) -> bool:
        """Revoke the user's family with this id, if it is theirs and live."""
        family = await self._tokens.refresh.get(handle)
        if family is None or family.user_id != user_id or family.revoked_at is not None:
            return False
        await self._tokens.revoke_family(handle)
        return True
