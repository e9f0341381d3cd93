"""The throttle's compare-and-count (``ThrottleStore.count_if``) and its ``release``: the
contract every backend keeps, on real servers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from velvetrope.stores import Stores

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = timedelta(hours=1)


async def count(stores: Stores, at: datetime, limit: int, key: str = "k") -> int | None:
    record = await stores.throttle.count_if(key, at, window_start=at - WINDOW, limit=limit)
    return None if record is None else record.count


async def test_count_if_counts_up_to_the_limit_then_writes_nothing(stores: Stores) -> None:
    counts = [await count(stores, T0 + timedelta(seconds=n), 3) for n in range(5)]
    assert counts == [1, 2, 3, None, None]
    record = await stores.throttle.get("k")
    assert record is not None
    assert (record.count, record.first_at) == (3, T0)
    assert record.last_at == T0 + timedelta(seconds=2)  # refusals left no trace


async def test_count_if_with_a_higher_limit_admits_exactly_one_more(stores: Stores) -> None:
    """The back-off's "one more after the wait": the limit is the count seen plus one."""
    for n in range(3):
        await count(stores, T0 + timedelta(seconds=n), 3)
    assert await count(stores, T0 + timedelta(minutes=1), 4) == 4
    assert await count(stores, T0 + timedelta(minutes=1), 4) is None


async def test_count_if_restarts_a_stale_run(stores: Stores) -> None:
    for n in range(3):
        await count(stores, T0 + timedelta(seconds=n), 3)
    later = T0 + WINDOW + timedelta(minutes=1)
    assert await count(stores, later, 3) == 1
    record = await stores.throttle.get("k")
    assert record is not None
    assert record.first_at == later


async def test_count_if_below_one_admits_nothing(stores: Stores) -> None:
    assert await count(stores, T0, 0) is None
    assert await stores.throttle.get("k") is None


async def test_racing_count_ifs_admit_exactly_the_limit(stores: Stores) -> None:
    """Fifty concurrent attempts (over the pool's connections, where there is one) on one
    key: the compare and the count are one step, so exactly ``limit`` get through."""
    outcomes = await asyncio.gather(*(count(stores, T0, 7) for _ in range(50)))
    admitted = sorted(c for c in outcomes if c is not None)
    assert admitted == list(range(1, 8))
    record = await stores.throttle.get("k")
    assert record is not None
    assert record.count == 7


async def test_count_if_keys_are_independent(stores: Stores) -> None:
    assert await count(stores, T0, 1, "a") == 1
    assert await count(stores, T0, 1, "a") is None
    assert await count(stores, T0, 1, "b") == 1


async def test_release_gives_back_one_place_of_the_same_run(stores: Stores) -> None:
    await count(stores, T0, 2)
    await count(stores, T0 + timedelta(seconds=1), 2)
    assert await count(stores, T0 + timedelta(seconds=2), 2) is None
    assert await stores.throttle.release("k", first_at=T0)
    assert await count(stores, T0 + timedelta(seconds=3), 2) == 2


async def test_release_never_goes_below_zero(stores: Stores) -> None:
    await count(stores, T0, 5)
    assert await stores.throttle.release("k", first_at=T0)
    assert not await stores.throttle.release("k", first_at=T0)
    record = await stores.throttle.get("k")
    assert record is not None
    assert record.count == 0


async def test_release_leaves_a_restarted_run_alone(stores: Stores) -> None:
    await count(stores, T0, 5)
    later = T0 + WINDOW + timedelta(minutes=1)
    await count(stores, later, 5)  # a new run began
    assert not await stores.throttle.release("k", first_at=T0)
    assert not await stores.throttle.release("missing", first_at=T0)
    record = await stores.throttle.get("k")
    assert record is not None
    assert (record.count, record.first_at) == (1, later)
