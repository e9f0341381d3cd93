"""The hybrid gateway: a session at the edge, a short-lived internal JWT inside.

* :mod:`~velvetrope.core.gateway.claims` -- the internal token's claims, checked exactly
  (the edge and the services behind it share the one validator);
* :mod:`~velvetrope.core.gateway.tokens` -- the policy and the minter, with a key ring
  of its own (purpose ``internal``);
* :mod:`~velvetrope.core.gateway.cache` -- the mint cache (single-flight, bounded LRU);
* :mod:`~velvetrope.core.gateway.service` -- the edge check and revocation by push.
"""

from velvetrope.core.gateway.cache import MintCache, MintCacheStatus
from velvetrope.core.gateway.claims import (
    INTERNAL_TYP,
    InternalClaims,
    validate_internal_claims,
)
from velvetrope.core.gateway.service import (
    REVOKED_SESSION,
    REVOKED_USER,
    Gateway,
    GatewayStatus,
    parse_revocation,
)
from velvetrope.core.gateway.tokens import (
    INTERNAL_PURPOSE,
    GatewayPolicy,
    InternalTokens,
    Minted,
)

__all__ = [
    "INTERNAL_PURPOSE",
    "INTERNAL_TYP",
    "REVOKED_SESSION",
    "REVOKED_USER",
    "Gateway",
    "GatewayPolicy",
    "GatewayStatus",
    "InternalClaims",
    "InternalTokens",
    "MintCache",
    "MintCacheStatus",
    "Minted",
    "parse_revocation",
    "validate_internal_claims",
]
