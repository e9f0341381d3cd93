"""The persisted security log: the contract every backend keeps, on real servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from velvetrope.stores import Stores
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
