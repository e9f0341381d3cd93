"""The DPoP replay check: an in-process cache of spent proof ids in front of the store.

Every DPoP-bound request spends its proof's ``jti`` (RFC 9449 section 11.1). The
truth is ``stores.one_time``, which every node shares; putting a key there is a write
(SQLite: a statement and a WAL append, ~35 us; Redis or PostgreSQL: a round trip).
:class:`ReplayCache` keeps the keys this process spent recently in a bounded dict:

* a key found here is a replay and is refused at once, without asking the store (a
  flood of replays to one node costs dict lookups, not writes);
* a key not found here is spent in the store when the scope is ``shared`` (the
  default wherever another process can verify proofs against the same store), and
  only here when the scope is ``process`` (a single server process over a store no
  other process verifies against: ``memory://``, or a SQLite file served by one
  process). So replay protection is never weaker than the store's: in ``shared``
  scope the store still decides every first use; in ``process`` scope this dict *is*
  the one place proofs are verified.

Bounded without forgetting a live key: an entry lives until the proof it names would
be stale anyway (``iat`` window plus skew), after which a replay is refused by the
``iat`` check. When the cache is full and its oldest entry is still live, nothing is
evicted: the key goes to the store instead (``process`` scope falls back to the
store's put, which is always correct). Entries are inserted only for proofs whose
signature and claims verified, so forged proofs cannot fill it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from velvetrope.stores.protocols import OneTimeStore

__all__ = ["DEFAULT_REPLAY_CACHE_SIZE", "ReplayCache", "ReplayCacheStatus", "ReplayScope"]

ReplayScope = Literal["shared", "process"]
DEFAULT_REPLAY_CACHE_SIZE = 65_536
"""Spent proof ids kept per process (about 150 bytes each: ~10 MiB when full)."""


@dataclass(frozen=True, slots=True)
class ReplayCacheStatus:
    """What ``/ready`` reports of the replay cache.

    Attributes:
        scope: ``shared`` (the store decides first uses) or ``process``.
        entries: Spent ids held now.
        max_entries: The bound.
        store_writes: First uses spent in the store.
        local_refusals: Replays refused from the cache, without the store.
        overflows: First uses sent to the store because the cache was full of live ids.
    """

    scope: ReplayScope
    entries: int
    max_entries: int
    store_writes: int
    local_refusals: int
    overflows: int


class ReplayCache:
    """Spend single-use keys: in this process first, in the shared store when needed."""

    def __init__(
        self,
        store: OneTimeStore,
        *,
        scope: ReplayScope = "shared",
        max_entries: int = DEFAULT_REPLAY_CACHE_SIZE,
    ) -> None:
        """Args:
        store: The shared single-use store (``stores.one_time``).
        scope: ``shared`` or ``process`` (see the module docstring).
        max_entries: The most keys kept here (at least 1).

        Raises:
            ValueError: ``max_entries`` is below 1.
        """
        if max_entries < 1:
            raise ValueError("the replay cache needs room for at least one entry")
        self.scope: ReplayScope = scope
        self.max_entries = max_entries
        self._store = store
        self._spent: OrderedDict[str, float] = OrderedDict()  # key -> expiry (epoch s)
        self._store_writes = 0
        self._local_refusals = 0
        self._overflows = 0
        self._store_live_until = 0.0  # the latest expiry of a key spent in the store

    async def spend(self, key: str, *, now: datetime, expires_at: datetime) -> bool:
        """Spend ``key`` until ``expires_at``; return ``False`` if it was spent already.

        Raises:
            StoreUnavailable: The store had to be asked and did not answer (fail closed).
        """
        moment, until = now.timestamp(), expires_at.timestamp()
        spent = self._spent
        expiry = spent.get(key)
        if expiry is not None and expiry > moment:
            self._local_refusals += 1
            return False
        self._drop_expired(moment)
        room = len(spent) < self.max_entries
        # In process scope the store is asked too while keys spent there (on overflow)
        # may still be live: a replay of one of them must not pass the empty cache.
        if self.scope == "shared" or not room or moment < self._store_live_until:
            if not room:
                self._overflows += 1
            self._store_writes += 1
            if not await self._store.put(key, "1", now=now, expires_at=expires_at):
                return False
            self._store_live_until = max(self._store_live_until, until)
        if room:
            spent[key] = until
            spent.move_to_end(key)
        return True

    def _drop_expired(self, moment: float) -> None:
        # Keys arrive with nearly the same lifetime, so the oldest insertions expire
        # first: popping from the front until a live one is amortised O(1).
        spent = self._spent
        while spent:
            key, expiry = next(iter(spent.items()))
            if expiry > moment:
                break
            del spent[key]

    def status(self) -> ReplayCacheStatus:
        """A snapshot of the counters."""
        return ReplayCacheStatus(
            scope=self.scope,
            entries=len(self._spent),
            max_entries=self.max_entries,
            store_writes=self._store_writes,
            local_refusals=self._local_refusals,
            overflows=self._overflows,
        )
