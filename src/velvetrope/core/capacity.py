"""Every in-process cache and queue on the hot path, with its bound: what ``/ready`` reports.

Each is bounded, and each says how full it is:

=========================  =========================================  ==================
name                       what it holds                              bound
=========================  =========================================  ==================
``verified_tokens``        access tokens that verified (segmented     ``TokenPolicy.
                           LRU; forged ones never enter)              cache_size`` 10,000
``dpop_replays``           spent DPoP proof ids, until stale          65,536 (setting)
``dpop_proof_keys``        imported client keys and thumbprints       4,096
``token_headers``          parsed header segments of verified tokens  64 each
``checked_keys``           keys whose use and type were checked       256
``password_hashing``       hashes running and waiting                 workers + queue
=========================  =========================================  ==================

The session near-cache (Redis, PostgreSQL) reports under ``session_cache``; SQLite's
read cache (10,000 sessions, dropped whole when full or when another process writes)
and the memory store hold no more than the sessions that exist.
"""

from __future__ import annotations

from typing import Any

from velvetrope.core.service import AuthService
from velvetrope.core.tokens import codec

__all__ = ["cache_limits"]


def cache_limits(service: AuthService) -> dict[str, dict[str, Any]]:
    """Each cache's size, bound and counters, keyed by the names in the module table."""
    access = service.tokens.access
    replays = service.dpop.replays.status()
    hashing = service.users.hasher.workers.status()
    return {
        "verified_tokens": {
            "entries": access.cache_entries,
            "max_entries": access.policy.cache_size,
            "hits": access.hits,
            "misses": access.misses,
        },
        "dpop_replays": {
            "scope": replays.scope,
            "entries": replays.entries,
            "max_entries": replays.max_entries,
            "store_writes": replays.store_writes,
            "local_refusals": replays.local_refusals,
            "overflows": replays.overflows,
        },
        "dpop_proof_keys": {
            "entries": codec.cached_proof_keys(),
            "max_entries": codec.PROOF_KEY_CACHE_SIZE,
        },
        "token_headers": {
            "entries": codec.cached_headers(),
            "max_entries": 2 * codec.HEADER_CACHE_SIZE,
        },
        "checked_keys": {
            "entries": codec.checked_keys(),
            "max_entries": codec.USABLE_KEY_CACHE_SIZE,
        },
        "password_hashing": {
            "workers": hashing.workers,
            "queue": hashing.queue,
            "max_wait_seconds": hashing.max_wait.total_seconds(),
            "nice": hashing.nice,
            "in_flight": hashing.in_flight,
            "completed": hashing.completed,
            "refused_full": hashing.refused_full,
            "refused_waited": hashing.refused_waited,
        },
    }
