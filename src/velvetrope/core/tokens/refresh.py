"""Refresh tokens: opaque, 256-bit, stored as a hash, rotated on every use (RT-01..RT-07).

A family is one sign-in of one device. Each use of its current token yields the next
one; presenting a token the family has already moved past is theft (RFC 9700
§4.14.2): the whole family is revoked, its outstanding access tokens with it.

The grace window (RT-04): a client that retries the same refresh within
``refresh_grace`` (a lost response, two tabs racing) gets the *same* new pair rather
than a false theft alarm. That needs no stored secret: token ``n+1`` is
``HMAC(secret, token n)``, so the server can re-derive it from the retried token,
and the access token issued with it is re-derived too (same ``jti`` and ``iat``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from velvetrope.clock import Clock, system_clock
from velvetrope.core.events import SecurityEvents
from velvetrope.core.ids import (
    TokenSource,
    is_well_formed_secret,
    new_handle,
    new_secret,
    secret_digest,
)
from velvetrope.core.tokens.access import TokenPolicy
from velvetrope.errors import DPoPProofRefused, InvalidGrant, RefreshTokenReused
from velvetrope.stores.protocols import RefreshStore
from velvetrope.stores.records import RefreshFamilyRecord

__all__ = ["RefreshGrant", "RefreshTokens"]


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """A refresh token handed out, and what the access token issued with it must carry.

    Attributes:
        token: The raw refresh token, for the client only.
        family: The family it belongs to (after the rotation).
        jti: The ``jti`` for the access token issued with it (derived, see module doc).
        issued_at: The ``iat`` for that access token.
        replayed: Whether this repeats an earlier answer inside the grace window.
    """

    token: str = field(repr=False)
    family: RefreshFamilyRecord
    jti: str
    issued_at: datetime
    replayed: bool = False


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _key_matches(family: RefreshFamilyRecord, jkt: str | None) -> bool:
    """Whether a request with proof key ``jkt`` may move ``family``: any may move an
    unbound family, only a proof by its key a bound one (RFC 9449 §5)."""
    return family.jkt is None or (jkt is not None and hmac.compare_digest(family.jkt, jkt))


def _check_key(family: RefreshFamilyRecord, jkt: str | None) -> None:
    """A family bound to a DPoP key moves only for a proof by that key (RFC 9449 §5).

    Raises:
        DPoPProofRefused: The family is bound and ``jkt`` is missing or another key's.
    """
    if not _key_matches(family, jkt):
        raise DPoPProofRefused(
            "This refresh token is bound to a key: send a DPoP proof signed by that key."
        )


class RefreshTokens:
    """Refresh families over a :class:`RefreshStore`."""

    def __init__(
        self,
        store: RefreshStore,
        policy: TokenPolicy,
        *,
        secret: bytes,
        events: SecurityEvents,
        now: Clock = system_clock,
        token_bytes: TokenSource = secrets.token_bytes,
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the refresh-derivation secret must be at least 32 bytes")
        self._store = store
        self.policy = policy
        self._secret = secret
        self._events = events
        self._now = now
        self._token_bytes = token_bytes

    def _derive(self, label: bytes, token: str) -> str:
        return _b64(hmac.new(self._secret, label + token.encode("ascii"), hashlib.sha256).digest())

    def _grant(
        self, token: str, family: RefreshFamilyRecord, *, replayed: bool = False
    ) -> RefreshGrant:
        jti = self._derive(b"jti\x00", token)[:22]
        return RefreshGrant(token, family, jti, family.rotated_at, replayed)

    async def start(
        self,
        user_id: str,
        *,
        ip: str = "",
        user_agent: str = "",
        jkt: str | None = None,
        lifetime: timedelta | None = None,
    ) -> RefreshGrant:
        """Open a family after a password sign-in and return its first token; ``jkt`` binds
        the family to a DPoP key (every later refresh must prove it). ``lifetime`` is a
        shorter absolute lifetime than the policy's (a browser sign-in not remembered)."""
        now = self._now()
        longest = self.policy.refresh_absolute_lifetime
        lifetime = longest if lifetime is None else min(lifetime, longest)
        token = new_secret(self._token_bytes)
        family = RefreshFamilyRecord(
            id=new_handle(self._token_bytes),
            user_id=user_id,
            created_at=now,
            last_used_at=now,
            expires_at=now + lifetime,
            authenticated_at=now,
            generation=0,
            rotated_at=now,
            ip=ip[:64],
            user_agent=user_agent[:256],
            jkt=jkt,
        )
        await self._store.create(family, secret_digest(token))
        self._events.emit("refresh_family_created", user=user_id, family=family.id)
        return self._grant(token, family)

    async def rotate(self, token: str, *, jkt: str | None = None) -> RefreshGrant:
        """Exchange a refresh token for the next one.

        ``jkt`` is the thumbprint of the DPoP proof's key, if one came: a family bound
        to a key rotates only for a proof by that key (RFC 9449 section 5), checked
        before anything changes, so a stolen token used with another key spends nothing.
        An unbound family rotated with a proof is bound to its key by the rotation
        itself (DPOP-11): from then on its refresh tokens need proofs by that key.

        Reuse detection comes before the key check for an old token: a stale token
        (an earlier generation, past the retry grace) revokes the family whatever key
        it comes with, and so does a retry inside the grace whose key is not the one
        the family is bound to (two clients hold the token). Otherwise a thief who
        bound a stolen token's family to their own key first would make the owner's
        later refresh a mere "wrong key" refusal, and the theft would go unnoticed.

        Raises:
            InvalidGrant: Unknown, expired or revoked; or reused, in which case the
                whole family has just been revoked (check ``family_revoked`` events).
            DPoPProofRefused: The token is the family's current one, the family is
                bound to a key and the proof is not by it (nothing is spent).
        """
        if not is_well_formed_secret(token):
            raise InvalidGrant
        found = await self._store.find(secret_digest(token))
        if found is None:
            raise InvalidGrant
        family, generation = found
        now = self._now()
        if family.revoked_at is not None:
            raise InvalidGrant("The refresh token has been revoked.")
        idle_deadline = family.last_used_at + self.policy.refresh_idle_timeout
        if now >= family.expires_at or now >= idle_deadline:
            raise InvalidGrant("The refresh token has expired; sign in again.")
        successor = self._derive(b"next\x00", token)
        if generation == family.generation:
            _check_key(family, jkt)
            won = await self._store.rotate(
                family.id,
                from_generation=generation,
                digest=secret_digest(successor),
                now=now,
                jkt=jkt,
            )
            if won:
                rotated = await self._store.get(family.id)
                assert rotated is not None  # noqa: S101 - just rotated
                if family.jkt is None and rotated.jkt is not None:
                    self._events.emit(
                        "refresh_family_bound",
                        user=family.user_id,
                        family=family.id,
                        key=rotated.jkt,
                    )
                return self._grant(successor, rotated)
            # Another request rotated the same token a moment ago: a racing retry,
            # which may have bound the family to its key as it rotated.
            latest = await self._store.get(family.id)
            if latest is None:
                raise InvalidGrant
            family = latest
        if (
            generation == family.generation - 1
            and now - family.rotated_at <= self.policy.refresh_grace
            and _key_matches(family, jkt)
        ):
            return self._grant(successor, family, replayed=True)
        await self._store.revoke(family.id, now)
        self._events.emit(
            "refresh_reuse_detected", user=family.user_id, family=family.id, generation=generation
        )
        raise RefreshTokenReused(family.id)

    async def find_family(self, token: str) -> RefreshFamilyRecord | None:
        """The family a refresh token belongs to, if any (for RFC 7009 revocation)."""
        if not is_well_formed_secret(token):
            return None
        found = await self._store.find(secret_digest(token))
        return None if found is None else found[0]

    async def revoke(self, family_id: str) -> RefreshFamilyRecord | None:
        """Revoke one family; return it if it was live."""
        family = await self._store.revoke(family_id, self._now())
        if family is not None:
            self._events.emit("refresh_family_revoked", user=family.user_id, family=family_id)
        return family

    async def revoke_for_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        """Revoke every family of the user (except ``keep``); return their ids."""
        return list(await self._store.revoke_for_user(user_id, self._now(), keep=keep))

    async def list(self, user_id: str) -> list[RefreshFamilyRecord]:
        """The user's live families, oldest first."""
        now = self._now()
        return [
            f
            for f in await self._store.list_for_user(user_id)
            if now < f.expires_at and now < f.last_used_at + self.policy.refresh_idle_timeout
        ]

    async def get(self, family_id: str) -> RefreshFamilyRecord | None:
        """The family with this id, revoked or not."""
        return await self._store.get(family_id)

    async def purge_expired(self) -> int:
        """Delete families past their absolute lifetime."""
        return await self._store.purge_expired(self._now())

    def access_deadline(self, family: RefreshFamilyRecord) -> datetime:
        """No access token of this family may outlive the family itself."""
        return family.expires_at
