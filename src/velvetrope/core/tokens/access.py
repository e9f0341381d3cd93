"""Access tokens: RFC 9068 JWTs (``typ: at+jwt``), short-lived, verified without a lookup.

The per-request check is: a bounded cache of verified tokens (a dict lookup for a
token seen before; a segmented LRU that only verified tokens enter, so neither forged
tokens nor one-off valid ones push out the tokens in use), a read of the store's
revocation epoch where it has one (shared memory: has another process revoked
something?), then three in-process revocation lookups. Cache entries die at ``exp``;
revocation is checked on every hit, so a revoked token is refused on the very next
request even while cached.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from velvetrope.clock import Clock, system_clock
from velvetrope.core.ids import TokenSource
from velvetrope.core.tokens import codec
from velvetrope.core.tokens.claims import AccessClaims, validate_access_claims
from velvetrope.core.tokens.codec import Algorithm
from velvetrope.core.tokens.keys import KeyRing
from velvetrope.core.tokens.revocation import RevocationState
from velvetrope.errors import InvalidToken
from velvetrope.stores.bounded import SegmentedCache

__all__ = ["ACCESS_TYP", "AccessTokens", "IssuedAccess", "TokenPolicy"]

ACCESS_TYP = "at+jwt"
MAX_LEEWAY = timedelta(seconds=300)


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """Token lifetimes and identities.

    Attributes:
        issuer: ``iss``: the public origin of this service.
        audience: ``aud``: who the access tokens are for.
        client_id: ``client_id`` (RFC 9068): the public client velvetrope serves.
        algorithm: The signing algorithm of new keys.
        access_ttl: Access-token lifetime (minutes, KEY-05).
        leeway: Clock skew allowed on ``exp``/``nbf``/``iat`` (≤ 300 s, JWT-10).
        refresh_idle_timeout: A refresh family unused this long ends.
        refresh_absolute_lifetime: A refresh family ends this long after sign-in (RT-06).
        refresh_grace: How long a retried refresh returns the same new pair (RT-04).
        key_rotation: Rotate the signing key when it is this old.
        cache_size: How many verified tokens the fast path remembers.
        revocation_staleness: Past this age, the revocation state is re-read before a
            bearer token is accepted (and a store outage then fails closed).
    """

    issuer: str
    audience: str
    client_id: str = "velvetrope"
    algorithm: Algorithm = "EdDSA"
    access_ttl: timedelta = timedelta(minutes=15)
    leeway: timedelta = timedelta(seconds=30)
    refresh_idle_timeout: timedelta = timedelta(days=1)
    refresh_absolute_lifetime: timedelta = timedelta(days=30)
    refresh_grace: timedelta = timedelta(seconds=10)
    key_rotation: timedelta = timedelta(days=30)
    cache_size: int = 10_000
    revocation_staleness: timedelta = timedelta(seconds=5)

    def __post_init__(self) -> None:
        if not timedelta(0) < self.access_ttl <= timedelta(hours=1):
            raise ValueError("the access-token lifetime must be between 0 and 1 hour")
        if not timedelta(0) <= self.leeway <= MAX_LEEWAY:
            raise ValueError("the leeway must be between 0 and 300 seconds")
        if self.refresh_idle_timeout <= timedelta(0):
            raise ValueError("the refresh idle timeout must be positive")
        for name, value in (("issuer", self.issuer), ("audience", self.audience)):
            if not 1 <= len(value) <= 256:
                raise ValueError(f"the token {name} must be 1 to 256 characters")
        if self.refresh_idle_timeout > self.refresh_absolute_lifetime:
            raise ValueError("the refresh idle timeout cannot exceed its absolute lifetime")
        if self.refresh_absolute_lifetime > timedelta(days=30):
            raise ValueError("the refresh lifetime cannot exceed 30 days (NIST AAL1)")
        if not timedelta(0) <= self.refresh_grace <= timedelta(seconds=60):
            raise ValueError("the refresh grace window must be between 0 and 60 seconds")
        if self.cache_size < 0:
            raise ValueError("cache_size cannot be negative")


@dataclass(frozen=True, slots=True)
class IssuedAccess:
    """A freshly signed access token and what it says."""

    token: str = field(repr=False)
    claims: AccessClaims


def new_jti(token_bytes: TokenSource = secrets.token_bytes) -> str:
    """A 128-bit random token id (JWT-15)."""
    return base64.urlsafe_b64encode(token_bytes(16)).rstrip(b"=").decode("ascii")


class AccessTokens:
    """Issues and verifies access tokens."""

    def __init__(
        self,
        keys: KeyRing,
        policy: TokenPolicy,
        revocations: RevocationState,
        *,
        now: Clock = system_clock,
        token_bytes: TokenSource = secrets.token_bytes,
    ) -> None:
        self.keys = keys
        self.policy = policy
        self.revocations = revocations
        self._now = now
        self._token_bytes = token_bytes
        # Segmented LRU: tokens used again are kept over one-off ones (cache pollution).
        self._cache: SegmentedCache[str, AccessClaims] = SegmentedCache(policy.cache_size)
        self.hits = 0
        self.misses = 0

    def issue(
        self,
        *,
        user_id: str,
        family_id: str,
        jti: str | None = None,
        issued_at: datetime | None = None,
        not_after: datetime | None = None,
        jkt: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> IssuedAccess:
        """Sign an access token for ``user_id`` in refresh family ``family_id``.

        ``jti`` and ``issued_at`` are given when re-issuing a pair inside the refresh
        grace window, so the retry gets the same token content. ``not_after`` caps
        ``exp`` (a token never outlives its family). ``jkt`` binds the token to a DPoP
        key (``cnf.jkt``). ``extra`` are claims added beside the registered ones
        (``email``, application claims), checked by the caller; they never replace one.
        """
        iat = int((issued_at or self._now()).timestamp())
        exp = iat + int(self.policy.access_ttl.total_seconds())
        if not_after is not None:
            exp = min(exp, int(not_after.timestamp()))
        claims: dict[str, object] = {
            **(extra or {}),
            "iss": self.policy.issuer,
            "aud": self.policy.audience,
            "sub": user_id,
            "client_id": self.policy.client_id,
            "sid": family_id,
            "jti": jti or new_jti(self._token_bytes),
            "iat": iat,
            "nbf": iat,
            "exp": exp,
        }
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}
        signer = self.keys.signing_key
        token = codec.sign_compact(
            claims, key=signer.jwk, alg=signer.alg, kid=signer.kid, typ=ACCESS_TYP
        )
        return IssuedAccess(token, self._validate(claims))

    def _validate(self, raw: dict[str, object]) -> AccessClaims:
        return validate_access_claims(
            raw,
            issuer=self.policy.issuer,
            audience=self.policy.audience,
            now=self._now(),
            leeway=self.policy.leeway,
        )

    async def verify(self, token: str) -> AccessClaims:
        """Return the claims of a valid, unrevoked access token: the per-request check.

        Raises:
            InvalidToken: Forged, malformed, expired, not yet valid, or revoked.
            StoreUnavailable: Another process revoked something and the feed cannot be
                read (fail closed).
        """
        claims = self._cache.get(token)
        if claims is None:
            self.misses += 1
            claims = self._verify_uncached(token)
            if claims is None:  # a key we do not know: maybe another node rotated
                claims = await self._verify_after_reload(token)
        elif self._now() >= claims.expires_at + self.policy.leeway:
            self._cache.pop(token)
            raise InvalidToken("expired")
        else:
            self.hits += 1
        revocations = self.revocations
        if revocations.behind():  # another process revoked something: replay first
            await revocations.sync()  # StoreUnavailable -> 503: fail closed
        if revocations.is_revoked(claims):
            self._cache.pop(token)
            raise InvalidToken("revoked")
        return claims

    def _verify_uncached(self, token: str) -> AccessClaims | None:
        """Verify a token and cache its claims; ``None`` if its ``kid`` is unknown.

        Synchronous: the cold check awaits nothing unless the key must be reloaded.
        """
        try:
            decoded = codec.decode_compact(token, self.keys.lookup, typ=ACCESS_TYP)
        except InvalidToken as exc:
            if exc.reason == "unknown kid":
                return None
            raise
        return self._remember(token, decoded.claims)

    async def _verify_after_reload(self, token: str) -> AccessClaims:
        """Reload the keys (rate-limited) if the token's ``kid`` is new, then verify.

        Raises:
            InvalidToken: Still an unknown key, or not valid with the one found.
        """
        kid = codec.loads_strict(_header_bytes(token)).get("kid")
        if not isinstance(kid, str) or not await self.keys.refresh_if_unknown(kid):
            raise InvalidToken("unknown kid")
        return self._remember(
            token, codec.decode_compact(token, self.keys.lookup, typ=ACCESS_TYP).claims
        )

    def _remember(self, token: str, raw: dict[str, Any]) -> AccessClaims:
        claims = self._validate(raw)
        # Only a token that verified is cached, so forged ones never displace real ones.
        # Expired entries need no sweep: a lookup refuses and removes them, and one-off
        # entries age out of the probation segment first.
        self._cache.put(token, claims)
        return claims

    @property
    def cache_entries(self) -> int:
        """Verified tokens held by the fast-path cache now."""
        return len(self._cache)

    def forget(self, token: str) -> None:
        """Drop a token from the fast-path cache."""
        self._cache.pop(token)


def _header_bytes(token: str) -> bytes:
    segment = token.split(".", 1)[0]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
