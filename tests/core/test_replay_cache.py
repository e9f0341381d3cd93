"""The DPoP replay cache: cheaper first uses and replays, never a weaker replay check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from velvetrope.core.binding.replay import ReplayCache
from velvetrope.stores.memory.tokens import MemoryOneTimeStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LIFE = timedelta(seconds=65)


class CountingStore(MemoryOneTimeStore):
    """The memory store, counting the puts that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.puts = 0

    async def put(self, key: str, value: str, *, now: datetime, expires_at: datetime) -> bool:
        self.puts += 1
        return await super().put(key, value, now=now, expires_at=expires_at)


async def spend(cache: ReplayCache, key: str, at: datetime = NOW) -> bool:
    return await cache.spend(key, now=at, expires_at=at + LIFE)


async def test_PERF_01_shared_scope_spends_in_the_store_and_refuses_replays_locally() -> None:
    store = CountingStore()
    cache = ReplayCache(store, scope="shared")
    assert await spend(cache, "dpop:a")
    assert not await spend(cache, "dpop:a")  # the replay never reaches the store
    assert store.puts == 1
    assert cache.status().local_refusals == 1
    # Another process (another cache over the same store) refuses the replay too.
    other = ReplayCache(store, scope="shared")
    assert not await spend(other, "dpop:a")
    assert await spend(other, "dpop:b")


async def test_PERF_01_process_scope_spends_in_memory_only() -> None:
    store = CountingStore()
    cache = ReplayCache(store, scope="process")
    assert await spend(cache, "dpop:a")
    assert not await spend(cache, "dpop:a")
    assert store.puts == 0


async def test_PERF_01_a_full_cache_never_evicts_a_live_key_and_falls_back_to_the_store() -> None:
    store = CountingStore()
    cache = ReplayCache(store, scope="process", max_entries=2)
    assert await spend(cache, "dpop:a")
    assert await spend(cache, "dpop:b")
    assert await spend(cache, "dpop:c")  # full of live keys: c goes to the store
    assert store.puts == 1
    assert cache.status().overflows == 1
    # a and b are still refused (not evicted), c by the store.
    for key in ("dpop:a", "dpop:b", "dpop:c"):
        assert not await spend(cache, key)


async def test_PERF_01_keys_spent_in_the_store_stay_refused_after_the_cache_drains() -> None:
    store = CountingStore()
    cache = ReplayCache(store, scope="process", max_entries=1)
    assert await spend(cache, "dpop:a")
    later = NOW + timedelta(seconds=30)
    assert await spend(cache, "dpop:b", later)  # overflow: b is in the store only
    # a expires from the cache; b is still live in the store and must stay refused.
    drained = NOW + LIFE + timedelta(seconds=1)
    assert await spend(cache, "dpop:c", drained)
    assert not await spend(cache, "dpop:b", drained)


async def test_PERF_01_expired_keys_leave_the_cache() -> None:
    cache = ReplayCache(CountingStore(), scope="process", max_entries=4)
    for key in ("dpop:a", "dpop:b", "dpop:c"):
        assert await spend(cache, key)
    assert await spend(cache, "dpop:d", NOW + LIFE)
    assert cache.status().entries == 1


def test_PERF_01_the_cache_is_bounded() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ReplayCache(CountingStore(), max_entries=0)
