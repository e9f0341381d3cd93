"""Token flows: password grant, refresh grant, bearer authentication, revocation."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from velvetrope.clock import Clock, system_clock
from velvetrope.core.events import SecurityEvents
from velvetrope.core.ids import TokenSource
from velvetrope.core.tokens.access import AccessTokens, TokenPolicy
from velvetrope.core.tokens.claims import AccessClaims
from velvetrope.core.tokens.keys import KeyRing, SigningKey
from velvetrope.core.tokens.refresh import RefreshGrant, RefreshTokens
from velvetrope.core.tokens.revocation import TOPIC as REVOCATIONS_TOPIC
from velvetrope.core.tokens.revocation import RevocationState
from velvetrope.errors import InvalidToken, RefreshTokenReused
from velvetrope.stores.protocols import Stores
from velvetrope.stores.records import RefreshFamilyRecord

__all__ = ["ClaimsSource", "TokenPair", "TokenService"]

ClaimsSource = Callable[[str], Awaitable[Mapping[str, Any]]]
"""A user id to the claims its access tokens carry besides the registered ones."""

REFRESH_SECRET_NAME = "refresh-derivation-v1"  # noqa: S105 - a name, not a secret
KEY_PICKUP_SLACK = timedelta(minutes=1)
KEYS_TOPIC = "keys"


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What the token endpoint returns (RFC 6749 §5.1)."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    family: RefreshFamilyRecord


class TokenService:
    """Keys, access tokens, refresh families and revocation, together."""

    def __init__(
        self,
        stores: Stores,
        policy: TokenPolicy,
        *,
        events: SecurityEvents,
        now: Clock = system_clock,
        token_bytes: TokenSource = secrets.token_bytes,
        claims_for: ClaimsSource | None = None,
    ) -> None:
        """Args:
        stores: Where keys, families and revocations are kept.
        policy: Lifetimes and identities.
        events: Where security events go.
        now: The clock.
        token_bytes: The random source.
        claims_for: The extra claims (``email``, application claims) of a user's access
            tokens, asked at every issue and refresh; none by default.
        """
        self.policy = policy
        self._claims_for = claims_for
        self._stores = stores
        self._events = events
        self._now = now
        self._token_bytes = token_bytes
        # A retired key must verify every token it signed: one access TTL, plus the
        # leeway, plus the time other processes take to notice the rotation.
        self.keys = KeyRing(
            stores.keys,
            purpose="access",
            alg=policy.algorithm,
            overlap=policy.access_ttl + policy.leeway + KEY_PICKUP_SLACK,
            rotate_every=policy.key_rotation,
            now=now,
        )
        self.revocations = RevocationState(stores.revocations, notifier=stores.notifier, now=now)
        self.access = AccessTokens(
            self.keys, policy, self.revocations, now=now, token_bytes=token_bytes
        )
        self._refresh: RefreshTokens | None = None

    async def start(self, *, rotate_keys: bool = True) -> None:
        """Load keys (creating the first one), the refresh secret and the revocation feed."""
        await self.keys.load(rotate=rotate_keys)
        candidate = base64.b64encode(self._token_bytes(32)).decode("ascii")
        stored = await self._stores.keys.secret(REFRESH_SECRET_NAME, candidate)
        self._refresh = RefreshTokens(
            self._stores.refresh,
            self.policy,
            secret=base64.b64decode(stored),
            events=self._events,
            now=self._now,
            token_bytes=self._token_bytes,
        )
        await self.revocations.sync()

    @property
    def refresh(self) -> RefreshTokens:
        """The refresh-family service (after :meth:`start`)."""
        if self._refresh is None:
            raise RuntimeError("the token service is not started; call start() first")
        return self._refresh

    async def _extra_claims(self, user_id: str | None) -> Mapping[str, Any] | None:
        """The extra claims of ``user_id``'s tokens, asked *before* anything is issued or
        rotated, so a failing claims hook spends nothing."""
        if self._claims_for is None or user_id is None:
            return None
        return await self._claims_for(user_id)

    def _pair(
        self, grant: RefreshGrant, jkt: str | None, extra: Mapping[str, Any] | None
    ) -> TokenPair:
        issued = self.access.issue(
            extra=extra,
            user_id=grant.family.user_id,
            family_id=grant.family.id,
            jti=grant.jti,
            issued_at=grant.issued_at,
            not_after=grant.family.expires_at,
            jkt=jkt,
        )
        expires_in = int((issued.claims.expires_at - self._now()).total_seconds())
        return TokenPair(issued.token, grant.token, max(expires_in, 0), grant.family)

    async def issue_for(
        self,
        user_id: str,
        *,
        ip: str = "",
        user_agent: str = "",
        jkt: str | None = None,
        lifetime: timedelta | None = None,
    ) -> TokenPair:
        """Open a refresh family for a user who just proved their password; with ``jkt``
        (a DPoP key's thumbprint) the family and its access tokens are bound to that key.
        ``lifetime`` shortens the family's absolute lifetime (never lengthens it)."""
        extra = await self._extra_claims(user_id)
        grant = await self.refresh.start(
            user_id, ip=ip, user_agent=user_agent, jkt=jkt, lifetime=lifetime
        )
        return self._pair(grant, jkt, extra)

    async def refresh_grant(self, refresh_token: str, *, jkt: str | None = None) -> TokenPair:
        """Rotate a refresh token; see :meth:`RefreshTokens.rotate`. The new access token
        is bound to ``jkt`` (the DPoP proof's key) when one is given.

        A detected reuse also revokes the family's outstanding access tokens.

        Raises:
            InvalidGrant: As ``RefreshTokens.rotate``.
            DPoPProofRefused: The family is bound to another key than ``jkt``.
        """
        extra = None
        if self._claims_for is not None:
            family = await self.refresh.find_family(refresh_token)
            extra = await self._extra_claims(None if family is None else family.user_id)
        try:
            grant = await self.refresh.rotate(refresh_token, jkt=jkt)
        except RefreshTokenReused as reused:
            await self.revocations.revoke_family(reused.family_id, until=self._family_until())
            raise
        return self._pair(grant, jkt, extra)

    def _family_until(self) -> datetime:
        return self._now() + self.policy.access_ttl + self.policy.leeway

    async def verify(self, access_token: str) -> AccessClaims:
        """Verify an access token: the per-request check for API clients.

        Raises:
            InvalidToken: Not a valid, unrevoked access token of ours.
            StoreUnavailable: The revocation state is stale and cannot be read (fail
                closed, TERM-05).
        """
        claims = await self.access.verify(access_token)
        staleness = self.revocations.staleness()
        if staleness is None or staleness > self.policy.revocation_staleness:
            await self.revocations.sync()  # StoreUnavailable -> 503: fail closed (TERM-05)
            if self.revocations.is_revoked(claims):
                raise InvalidToken("revoked")
        return claims

    async def revoke_family(self, family_id: str) -> bool:
        """End a device: its refresh tokens and every access token it holds."""
        family = await self.refresh.revoke(family_id)
        await self.revocations.revoke_family(family_id, until=self._family_until())
        return family is not None

    async def revoke_user(self, user_id: str) -> int:
        """End every family of the user and cut off every token issued before now."""
        ended = await self.refresh.revoke_for_user(user_id)
        for family_id in ended:
            await self.revocations.revoke_family(family_id, until=self._family_until())
        until = self._now() + self.policy.refresh_absolute_lifetime
        await self.revocations.revoke_user(user_id, until=until)
        return len(ended)

    async def revoke_token(self, token: str) -> None:
        """RFC 7009: revoke a refresh token's family, or deny one access token.

        Unknown or invalid tokens are ignored: the endpoint answers 200 regardless.
        """
        family = await self.refresh.find_family(token)
        if family is not None:
            await self.revoke_family(family.id)
            return
        try:
            claims = await self.access.verify(token)
        except InvalidToken:
            return
        await self.revocations.revoke_jti(claims.jti, until=claims.expires_at + self.policy.leeway)
        self.access.forget(token)
        self._events.emit("access_token_revoked", user=claims.sub, family=claims.sid)

    async def rotate_keys(self) -> SigningKey:
        """Rotate the signing key now and tell the other nodes to pick it up."""
        key = await self.keys.rotate()
        self._events.emit("signing_key_rotated", kid=key.kid)
        notifier = self._stores.notifier
        if notifier is not None:
            await notifier.publish(KEYS_TOPIC)
        return key

    async def on_change(self, topic: str) -> None:
        """React to a push from another node: re-read what it names."""
        if topic == REVOCATIONS_TOPIC:
            await self.revocations.sync()
        elif topic == KEYS_TOPIC:
            await self.keys.reload()

    async def sync(self) -> None:
        """Replay the revocation feed and re-read the key ring (rotations made elsewhere)."""
        await self.revocations.sync()
        await self.keys.reload()

    async def maintain(self) -> None:
        """Periodic upkeep: rotate the key when due, purge expired families."""
        await self.keys.load()
        await self.refresh.purge_expired()
        await self._stores.revocations.purge_expired(self._now())
