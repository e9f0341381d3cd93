"""Strategies: what a credential *is*, whatever carries it (the transport's concern).

A way in to velvetrope is a backend: a name, a transport (a cookie, a header) and a
strategy. The strategy turns the credential string the transport found into a
:class:`~velvetrope.core.principal.Principal`, ends it, and lists and ends the devices
that hold credentials of its kind. Two ship with velvetrope:

* :class:`SessionStrategy`: an opaque session ID, looked up on every request.
* :class:`AccessTokenStrategy`: a signed access token (JWT) of a refresh family,
  verified without a lookup; its devices are the refresh families.

Write your own (an API key, a client certificate) against :class:`Strategy` and add a
backend with it (``Velvetrope.add_backend``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Protocol

from velvetrope.core.devices import Device
from velvetrope.core.principal import Principal
from velvetrope.core.sessions import SessionService
from velvetrope.core.tokens.service import TokenService
from velvetrope.errors import SessionNotFound

__all__ = ["AccessTokenStrategy", "SessionStrategy", "Strategy"]


class Strategy(Protocol):
    """What a credential is: how to verify it, end it, and list its devices."""

    async def authenticate(self, credential: str, *, method: str) -> Principal:
        """Verify ``credential``; the per-request check.

        Args:
            credential: What the transport read (a session ID, a token, a key).
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

    async def authenticate(self, credential: str, *, method: str) -> Principal:
        """Resolve a session ID: idle and absolute deadlines, then the principal."""
        session = await self._sessions.resolve(credential)
        return Principal(
            user_id=session.user_id, method=method, handle=session.handle, session=session
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


class AccessTokenStrategy:
    """Access tokens (RFC 9068 JWTs) of refresh families: verified, never looked up."""

    def __init__(self, tokens: TokenService) -> None:
        self._tokens = tokens

    async def authenticate(self, credential: str, *, method: str) -> Principal:
        """Verify the token's signature and claims, then the in-process revocations."""
        claims = await self._tokens.verify(credential)
        return Principal(user_id=claims.sub, method=method, handle=claims.sid, token=claims)

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
