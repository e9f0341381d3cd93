"""The persisted security log: the contract every backend keeps, on real servers."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from velvetrope.clock import FrozenClock
from velvetrope.core.security_log import ANONYMOUS, SecurityLog
from velvetrope.stores import Stores
from velvetrope.stores.anonymous_events import ANONYMOUS_ROWS
from velvetrope.stores.records import SecurityEventRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(n: int, subject: str = "user-1", kind: str = "login_succeeded") -> SecurityEventRecord:
    return SecurityEventRecord(
        id=f"id{n:06d}",
        at=T0 + timedelta(seconds=n),
        event=kind,
        subject=subject,
        ip="192.0.2.7",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) éè",
        handle=f"handle{n}",
        detail='{"failures":3}',
    )


async def test_LOG_03_events_round_trip_newest_first(stores: Stores) -> None:
    await stores.security_log.add([event(1), event(2)])
    await stores.security_log.add([event(3)])
    found = await stores.security_log.for_subjects(["user-1"], limit=10)
    assert found == [event(3), event(2), event(1)]


async def test_the_limit_keeps_the_newest(stores: Stores) -> None:
    await stores.security_log.add([event(n) for n in range(1, 251)])
    found = await stores.security_log.for_subjects(["user-1"], limit=3)
    assert [e.id for e in found] == ["id000250", "id000249", "id000248"]


async def test_subjects_are_separate_and_can_be_read_together(stores: Stores) -> None:
    await stores.security_log.add(
        [event(1, "user-1"), event(2, "email:abc", "login_failed"), event(3, "user-2")]
    )
    assert await stores.security_log.for_subjects(["user-2"], limit=10) == [event(3, "user-2")]
    both = await stores.security_log.for_subjects(["user-1", "email:abc"], limit=10)
    assert both == [event(2, "email:abc", "login_failed"), event(1, "user-1")]
    assert await stores.security_log.for_subjects([], limit=10) == []
    assert await stores.security_log.for_subjects(["nobody"], limit=10) == []


async def test_events_can_be_filtered_by_kind(stores: Stores) -> None:
    """Past a page of other kinds too: the filter is the store's, not a cut of one page."""
    await stores.security_log.add([event(1)])
    await stores.security_log.add(
        [event(n, kind="session_ended") for n in range(2, 302)] + [event(400)]
    )
    found = await stores.security_log.for_subjects(["user-1"], limit=5, events=["login_succeeded"])
    assert [e.id for e in found] == ["id000400", "id000001"]


async def test_LOG_04_purge_deletes_only_what_is_older_than_the_cutoff(stores: Stores) -> None:
    await stores.security_log.add([event(1), event(2, "user-2"), event(3)])
    purged = await stores.security_log.purge_before(T0 + timedelta(seconds=3))
    assert purged == 2
    assert await stores.security_log.for_subjects(["user-1", "user-2"], limit=10) == [event(3)]
    assert await stores.security_log.purge_before(T0) == 0


async def test_hostile_values_are_data(stores: Stores) -> None:
    hostile = "x'); DROP TABLE security_events; --{}\"\\\u2028"
    record = SecurityEventRecord(
        id="idhostile", at=T0, event="login_failed", subject=hostile, ip=hostile,
        user_agent=hostile, handle=hostile, detail=hostile,
    )  # fmt: skip
    await stores.security_log.add([record])
    assert await stores.security_log.for_subjects([hostile], limit=1) == [record]


async def test_LOG_07_a_flood_of_anonymous_events_leaves_bounded_rows(stores: Stores) -> None:
    """1,000 junk DPoP proofs and 1,000 throttled sign-ins on distinct addresses, with no
    one signed in, store the window's budget and one counting row per kind; a user's own
    events in the same flood are all kept."""
    clock = FrozenClock(T0)
    log = SecurityLog(stores.security_log, now=clock, anonymous_budget=10)
    addresses = [f"email:h{n:04d}" for n in range(1000)]
    for n in range(1000):
        log.sink("dpop_proof_refused", {"reason": "junk"})
        log.sink("login_throttled", {"email": addresses[n][6:], "ip": "192.0.2.7"})
        log.sink("session_ended", {"user": "user-1", "session": f"s{n}"})
    assert await log.flush()
    clock.advance(timedelta(minutes=1))  # the window ends: its counts are written
    assert await log.flush()
    anonymous = await stores.security_log.for_subjects([ANONYMOUS, *addresses], limit=5000)
    assert len(anonymous) == 10 + 2
    counted = {e.event: e.detail for e in anonymous if "suppressed" in e.detail}
    assert counted == {
        "dpop_proof_refused": '{"suppressed":995,"window_seconds":60}',
        "login_throttled": '{"suppressed":995,"window_seconds":60}',
    }
    assert len(await stores.security_log.for_subjects(["user-1"], limit=5000)) == 1000


async def test_LOG_07_the_store_keeps_only_the_newest_anonymous_rows(stores: Stores) -> None:
    """However many nodes write: past ANONYMOUS_ROWS the oldest anonymous rows go
    first; no other subject is trimmed."""
    extra = 150
    total = ANONYMOUS_ROWS + extra
    for start in range(0, total, 2000):
        batch = [
            event(n, ANONYMOUS, "dpop_proof_refused")
            for n in range(start, min(total, start + 2000))
        ]
        mine = dataclasses.replace(event(start, "user-1"), id=f"user{start:06d}")
        await stores.security_log.add([*batch, mine])
    kept = await stores.security_log.for_subjects([ANONYMOUS], limit=2 * total)
    assert len(kept) == ANONYMOUS_ROWS
    assert min(e.id for e in kept) == f"id{extra:06d}"  # the oldest went first
    assert len(await stores.security_log.for_subjects(["user-1"], limit=2 * total)) == 6
