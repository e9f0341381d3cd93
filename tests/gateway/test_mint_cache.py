"""The mint cache: single-flight, reuse until shortly before expiry, bounded LRU, eviction."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from velvetrope import FrozenClock
from velvetrope.core.gateway import MintCache, Minted

RENEW = timedelta(seconds=5)


class Minter:
    """Counts the mints; each token expires 60 s after it was made (on ``clock``)."""

    def __init__(self, clock: FrozenClock, *, gate: asyncio.Event | None = None) -> None:
        self.clock = clock
        self.count = 0
        self.gate = gate

    async def __call__(self) -> Minted:
        self.count += 1
        if self.gate is not None:
            await self.gate.wait()
        return Minted(
            f"token-{self.count}", f"jti-{self.count}", self.clock() + timedelta(seconds=60)
        )


def cache(clock: FrozenClock, size: int = 100) -> MintCache:
    return MintCache(max_entries=size, renew_before=RENEW, now=clock)


async def get(
    cache: MintCache, minter: Minter, handle: str = "h1", audience: str = "orders", user: str = "u1"
) -> Minted:
    return await cache.get(
        handle=handle,
        audience=audience,
        user_id=user,
        session_ends=minter.clock() + timedelta(hours=1),
        mint=minter,
    )


async def test_HYB_10_a_burst_of_100_requests_from_one_session_signs_once(
    clock: FrozenClock,
) -> None:
    gate = asyncio.Event()
    minter = Minter(clock, gate=gate)
    kept = cache(clock)
    burst = [asyncio.create_task(get(kept, minter)) for _ in range(100)]
    await asyncio.sleep(0)  # every request is now waiting on the one mint in flight
    gate.set()
    tokens = {m.token for m in await asyncio.gather(*burst)}
    assert minter.count == 1
    assert tokens == {"token-1"}
    assert kept.status().misses == 100  # 1 mint + 99 waiting for it, none served stale


async def test_HYB_10_a_token_is_reused_until_shortly_before_it_expires(
    clock: FrozenClock,
) -> None:
    minter = Minter(clock)
    kept = cache(clock)
    first = await get(kept, minter)
    clock.advance(timedelta(seconds=54))  # 6 s left: still reused
    assert await get(kept, minter) is first
    clock.advance(timedelta(seconds=1))  # 5 s left: renewed
    assert (await get(kept, minter)).token == "token-2"
    assert minter.count == 2
    status = kept.status()
    assert (status.hits, status.misses) == (1, 2)
    assert status.hit_ratio == pytest.approx(1 / 3)


async def test_HYB_10_each_audience_and_session_gets_its_own_token(clock: FrozenClock) -> None:
    minter = Minter(clock)
    kept = cache(clock)
    a = await get(kept, minter, audience="orders")
    b = await get(kept, minter, audience="billing")
    c = await get(kept, minter, handle="h2")
    assert len({a.token, b.token, c.token}) == 3


async def test_HYB_10_the_cache_is_bounded_and_evicts_the_least_recently_used(
    clock: FrozenClock,
) -> None:
    minter = Minter(clock)
    kept = cache(clock, size=3)
    for handle in ("h1", "h2", "h3"):
        await get(kept, minter, handle=handle)
    await get(kept, minter, handle="h1")  # h1 used again: h2 is now the oldest
    await get(kept, minter, handle="h4")
    assert len(kept) == 3
    count = minter.count
    await get(kept, minter, handle="h1")
    await get(kept, minter, handle="h3")
    assert minter.count == count  # kept
    await get(kept, minter, handle="h2")
    assert minter.count == count + 1  # evicted, minted again


async def test_HYB_07_sign_out_evicts_the_session_and_sign_out_everywhere_the_user(
    clock: FrozenClock,
) -> None:
    minter = Minter(clock)
    kept = cache(clock)
    await get(kept, minter, handle="h1", user="u1")
    await get(kept, minter, handle="h1", user="u1", audience="billing")
    await get(kept, minter, handle="h2", user="u1")
    await get(kept, minter, handle="h3", user="u2")
    assert kept.evict_session("h1") == 2
    assert kept.evict_user("u1") == 1
    assert len(kept) == 1
    assert kept.evict_ending(clock() + timedelta(hours=2)) == 1
    assert len(kept) == 0
    assert kept.status().evictions == 4


async def test_a_mint_in_flight_during_an_eviction_is_handed_out_but_not_kept(
    clock: FrozenClock,
) -> None:
    gate = asyncio.Event()
    minter = Minter(clock, gate=gate)
    kept = cache(clock)
    pending = asyncio.create_task(get(kept, minter))
    await asyncio.sleep(0)
    kept.evict_user("u1")  # the sign-out arrives while the token is being signed
    gate.set()
    assert (await pending).token == "token-1"
    assert len(kept) == 0


async def test_a_failed_mint_reaches_every_waiter_and_nothing_is_kept(clock: FrozenClock) -> None:
    gate = asyncio.Event()

    async def broken() -> Minted:
        await gate.wait()
        raise RuntimeError("signing failed")

    kept = cache(clock)
    waiters = [
        asyncio.create_task(
            kept.get(
                handle="h1",
                audience="orders",
                user_id="u1",
                session_ends=clock() + timedelta(hours=1),
                mint=broken,
            )
        )
        for _ in range(3)
    ]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert len(kept) == 0


async def test_size_zero_turns_the_cache_off(clock: FrozenClock) -> None:
    minter = Minter(clock)
    kept = cache(clock, size=0)
    await get(kept, minter)
    await get(kept, minter)
    assert minter.count == 2
    assert not kept.status().enabled


class CappedMinter(Minter):
    """A minter that never passes ``not_after`` (as ``InternalTokens.mint`` does)."""

    def __init__(self, clock: FrozenClock, not_after: timedelta, **kw: asyncio.Event) -> None:
        super().__init__(clock, **kw)
        self.not_after = not_after

    async def __call__(self) -> Minted:
        minted = await super().__call__()
        ends = min(minted.expires_at, self.clock() + self.not_after)
        return Minted(minted.token, minted.jti, ends)


async def get_until(cache: MintCache, minter: CappedMinter) -> Minted:
    return await cache.get(
        handle="family",
        audience="orders",
        user_id="u1",
        session_ends=minter.clock() + minter.not_after,
        not_after=minter.clock() + minter.not_after,
        mint=minter,
    )


async def test_HYB_14_a_kept_token_is_never_served_past_the_callers_own_end(
    clock: FrozenClock,
) -> None:
    kept = cache(clock)
    newer = CappedMinter(clock, timedelta(minutes=5))  # the family's newer access token
    older = CappedMinter(clock, timedelta(seconds=30))  # an older one, still live
    first = await get_until(kept, newer)
    served = await get_until(kept, older)
    assert older.count == 1  # signed for it, not served the kept one
    assert served.expires_at <= clock() + timedelta(seconds=30) < first.expires_at
    assert (await get_until(kept, newer)) is first  # still kept for the newer
    assert newer.count == 1


async def test_HYB_14_a_waiter_never_gets_a_mint_in_flight_that_outlives_it(
    clock: FrozenClock,
) -> None:
    gate = asyncio.Event()
    kept = cache(clock)
    newer = CappedMinter(clock, timedelta(minutes=5), gate=gate)
    older = CappedMinter(clock, timedelta(seconds=30))
    in_flight = asyncio.create_task(get_until(kept, newer))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(get_until(kept, older))
    await asyncio.sleep(0)
    gate.set()
    first, second = await asyncio.gather(in_flight, waiting)
    assert (newer.count, older.count) == (1, 1)
    assert second.expires_at <= clock() + timedelta(seconds=30) < first.expires_at
