"""Single-use values (DPoP proof ids, binding challenges, mailed links): the contract every
backend keeps, on real servers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from velvetrope.stores import Stores

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


async def test_a_value_put_is_taken_once(stores: Stores) -> None:
    assert await stores.one_time.put("k1", "v1", now=NOW, expires_at=LATER)
    assert await stores.one_time.take("k1", NOW) == "v1"
    assert await stores.one_time.take("k1", NOW) is None


async def test_a_live_entry_is_not_replaced(stores: Stores) -> None:
    assert await stores.one_time.put("k1", "first", now=NOW, expires_at=LATER)
    assert not await stores.one_time.put("k1", "second", now=NOW, expires_at=LATER)
    almost = LATER - timedelta(microseconds=1)
    assert not await stores.one_time.put("k1", "third", now=almost, expires_at=LATER)
    assert await stores.one_time.take("k1", NOW) == "first"


async def test_an_entry_past_its_deadline_is_absent(stores: Stores) -> None:
    """The deadline is core's: at ``expires_at`` the entry is gone, whatever the backend
    still holds, and a new put of the key succeeds."""
    await stores.one_time.put("k1", "old", now=NOW, expires_at=LATER)
    assert await stores.one_time.put("k1", "new", now=LATER, expires_at=LATER + timedelta(1))
    assert await stores.one_time.take("k1", LATER) == "new"
    await stores.one_time.put("k2", "old", now=NOW, expires_at=LATER)
    assert await stores.one_time.take("k2", LATER) is None
    assert await stores.one_time.take("k2", NOW) is None  # the expired take removed it


async def test_keys_are_independent(stores: Stores) -> None:
    await stores.one_time.put("dpop:a", "1", now=NOW, expires_at=LATER)
    await stores.one_time.put("dpop:b", "2", now=NOW, expires_at=LATER)
    assert await stores.one_time.take("dpop:b", NOW) == "2"
    assert await stores.one_time.take("dpop:a", NOW) == "1"


async def test_SESS_10_of_concurrent_puts_of_one_key_exactly_one_wins(stores: Stores) -> None:
    """A replayed proof sent to many nodes at once is accepted at most once."""
    won = await asyncio.gather(
        *(stores.one_time.put("jti", str(n), now=NOW, expires_at=LATER) for n in range(20))
    )
    assert sum(won) == 1


async def test_SESS_10_of_concurrent_takes_of_one_key_exactly_one_gets_it(
    stores: Stores,
) -> None:
    """A challenge or a mailed link answered twice at once is used at most once."""
    await stores.one_time.put("challenge", "session-handle", now=NOW, expires_at=LATER)
    got = await asyncio.gather(*(stores.one_time.take("challenge", NOW) for _ in range(20)))
    assert [g for g in got if g is not None] == ["session-handle"]


async def test_purge_keeps_live_entries(stores: Stores) -> None:
    await stores.one_time.put("old", "x", now=NOW, expires_at=NOW + timedelta(seconds=1))
    await stores.one_time.put("live", "y", now=NOW, expires_at=LATER)
    purged = await stores.one_time.purge_expired(NOW + timedelta(seconds=2))
    assert purged in (0, 1)  # Redis ends entries by TTL and counts nothing here
    assert await stores.one_time.take("live", NOW) == "y"
    assert await stores.one_time.take("old", NOW + timedelta(seconds=2)) is None
