"""Minting internal JWTs: the token a service behind the edge receives (HYB-01..HYB-05).

An internal token is signed by a key ring of its own (purpose ``internal``), never the
access-token ring, and carries its own ``typ`` (:data:`INTERNAL_TYP`): a browser's
access token cannot pass for one, nor the reverse. Keys are asymmetric only, so a
service verifies with the public JWKS and can never mint.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from velvetrope.clock import Clock, system_clock
from velvetrope.core.gateway.claims import INTERNAL_TYP, MAX_INTERNAL_TTL, REGISTERED_CLAIMS
from velvetrope.core.ids import TokenSource
from velvetrope.core.tokens import codec
from velvetrope.core.tokens.access import new_jti
from velvetrope.core.tokens.codec import Algorithm
from velvetrope.core.tokens.keys import KeyRing
from velvetrope.stores.protocols import KeyStore

__all__ = ["INTERNAL_PURPOSE", "GatewayPolicy", "InternalTokens", "Minted"]

INTERNAL_PURPOSE = "internal"
"""The key ring's purpose: keys never cross purposes (KEY-03)."""

_KEY_PICKUP_SLACK = timedelta(minutes=1)
_ASYMMETRIC: tuple[Algorithm, ...] = ("EdDSA", "ES256", "RS256")


@dataclass(frozen=True, slots=True)
class GatewayPolicy:
    """How the edge mints internal tokens.

    Attributes:
        issuer: ``iss`` of internal tokens (the edge).
        audiences: The services tokens may be minted for; the proxy names one per location.
        ttl: Token lifetime (60 s by default; never past the session's end).
        leeway: Clock skew services allow on ``exp``/``nbf``/``iat``.
        algorithm: The signing algorithm (asymmetric only).
        cache_size: Minted tokens kept per node; 0 turns the mint cache off.
        renew_before: A cached token is re-minted when this little of its life is left.
        key_rotation: Rotate the internal signing key when it is this old.
    """

    issuer: str
    audiences: frozenset[str]
    ttl: timedelta = timedelta(seconds=60)
    leeway: timedelta = timedelta(seconds=5)
    algorithm: Algorithm = "EdDSA"
    cache_size: int = 10_000
    renew_before: timedelta = timedelta(seconds=5)
    key_rotation: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        if not timedelta(seconds=5) <= self.ttl <= MAX_INTERNAL_TTL:
            raise ValueError("the internal token lifetime must be between 5 s and 10 minutes")
        if self.algorithm not in _ASYMMETRIC:
            raise ValueError("internal tokens are signed with EdDSA, ES256 or RS256 only")
        if not self.audiences:
            raise ValueError("the gateway needs at least one audience")
        for audience in self.audiences:
            if not 1 <= len(audience) <= 256 or audience != audience.strip():
                raise ValueError(f"gateway audience {audience[:40]!r} must be 1 to 256 characters")
        if not 1 <= len(self.issuer) <= 256:
            raise ValueError("the gateway issuer must be 1 to 256 characters")
        if self.cache_size < 0:
            raise ValueError("the mint cache size cannot be negative")
        if not timedelta(0) <= self.renew_before < self.ttl:
            raise ValueError("renew_before must be shorter than the token lifetime")
        if not timedelta(0) <= self.leeway <= timedelta(seconds=60):
            raise ValueError("the gateway leeway must be between 0 and 60 seconds")


@dataclass(frozen=True, slots=True)
class Minted:
    """A freshly signed internal token.

    Attributes:
        token: The compact JWS (never logged).
        jti: Its id.
        expires_at: ``exp``.
    """

    token: str = field(repr=False)
    jti: str
    expires_at: datetime


class InternalTokens:
    """Signs internal tokens with the ``internal`` key ring."""

    def __init__(
        self,
        store: KeyStore,
        policy: GatewayPolicy,
        *,
        now: Clock = system_clock,
        token_bytes: TokenSource = secrets.token_bytes,
    ) -> None:
        self.policy = policy
        self._now = now
        self._token_bytes = token_bytes
        self.keys = KeyRing(
            store,
            purpose=INTERNAL_PURPOSE,
            alg=policy.algorithm,
            overlap=policy.ttl + policy.leeway + _KEY_PICKUP_SLACK,
            rotate_every=policy.key_rotation,
            now=now,
        )
        self.minted = 0

    def mint(
        self,
        *,
        user_id: str,
        handle: str,
        audience: str,
        not_after: datetime,
        claims: Mapping[str, Any] | None = None,
    ) -> Minted:
        """Sign a token for ``audience`` on behalf of the session ``handle``.

        ``iat`` keeps milliseconds (a NumericDate may, RFC 7519 §2), so a revocation
        cut-off taken within the same second still tells older tokens from newer ones.
        ``exp`` never passes ``not_after`` (the session's end). Application ``claims``
        never override the registered ones.

        Raises:
            ValueError: ``audience`` is not one of the policy's.
        """
        if audience not in self.policy.audiences:
            raise ValueError("not a configured gateway audience")
        moment = self._now()
        iat = round(moment.timestamp(), 3)
        exp = min(int(iat) + int(self.policy.ttl.total_seconds()), int(not_after.timestamp()))
        jti = new_jti(self._token_bytes)
        body: dict[str, Any] = {
            k: v for k, v in (claims or {}).items() if k not in REGISTERED_CLAIMS
        }
        body.update(
            iss=self.policy.issuer,
            aud=audience,
            sub=user_id,
            sid=handle,
            jti=jti,
            iat=iat,
            nbf=int(iat),
            exp=max(exp, int(iat)),
        )
        signer = self.keys.signing_key
        token = codec.sign_compact(
            body, key=signer.jwk, alg=signer.alg, kid=signer.kid, typ=INTERNAL_TYP
        )
        self.minted += 1
        return Minted(token, jti, datetime.fromtimestamp(body["exp"], UTC))

    def jwks(self) -> dict[str, Any]:
        """The public keys that verify internal tokens (current and previous)."""
        return self.keys.jwks()
