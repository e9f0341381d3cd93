"""The persisted security log: fed by the event stream, never in a request's way."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from tests.support.services import PASSWORD
from velvetrope import AuthService
from velvetrope.clock import FrozenClock
from velvetrope.core.security_log import ANONYMOUS, SIGN_INS, SecurityLog
from velvetrope.errors import InvalidCredentials, StoreUnavailable
from velvetrope.stores import MemoryStores
from velvetrope.stores.records import SecurityEventRecord


class FlakyLog:
    """A security-log store whose server is down until told otherwise."""

    def __init__(self) -> None:
        self.inner = MemoryStores().security_log
        self.down = True

    async def add(self, events: Sequence[SecurityEventRecord]) -> None:
        if self.down:
            raise StoreUnavailable("down")
        await self.inner.add(events)

    async def for_subjects(
        self, subjects: Sequence[str], *, limit: int, events: Sequence[str] = ()
    ) -> Sequence[SecurityEventRecord]:
        return await self.inner.for_subjects(subjects, limit=limit, events=events)

    async def purge_before(self, cutoff: datetime) -> int:
        return await self.inner.purge_before(cutoff)


async def test_LOG_01_kept_events_are_written_with_public_fields_only(clock: FrozenClock) -> None:
    store = MemoryStores().security_log
    log = SecurityLog(store, now=clock)
    log.sink("login_failed", {"email": "0a1b2c3d4e5f", "ip": "192.0.2.1", "failures": 3})
    log.sink("session_created", {"user": "u1", "session": "h1"})  # repeats login_succeeded
    assert log.queued == 1
    assert await log.flush()
    [record] = await store.for_subjects(["email:0a1b2c3d4e5f"], limit=5)
    assert (record.event, record.ip, record.handle) == ("login_failed", "192.0.2.1", "")
    assert json.loads(record.detail) == {"failures": 3}
    assert record.at == clock()


async def test_LOG_02_a_store_outage_keeps_events_queued_until_it_is_back(
    clock: FrozenClock,
) -> None:
    store = FlakyLog()
    log = SecurityLog(store, now=clock)
    log.sink("refresh_reuse_detected", {"user": "u1", "family": "f1", "generation": 2})
    assert not await log.flush()  # no exception reaches the caller
    assert log.queued == 1
    store.down = False
    assert await log.flush()
    [record] = await store.for_subjects(["u1"], limit=5)
    assert (record.event, record.handle) == ("refresh_reuse_detected", "f1")


async def test_LOG_02_a_full_queue_drops_new_events_and_counts_them(clock: FrozenClock) -> None:
    log = SecurityLog(FlakyLog(), now=clock, max_queue=3)
    for n in range(5):
        log.sink("login_throttled", {"email": f"h{n}", "ip": "192.0.2.1"})
    assert (log.queued, log.dropped) == (3, 2)


async def test_LOG_04_purge_keeps_the_retention(clock: FrozenClock) -> None:
    store = MemoryStores().security_log
    log = SecurityLog(store, retention=timedelta(days=30), now=clock)
    log.sink("user_disabled", {"user": "u1"})
    await log.flush()
    clock.advance(timedelta(days=30))
    log.sink("user_enabled", {"user": "u1"})
    await log.flush()
    clock.advance(timedelta(seconds=1))
    assert await log.purge() == 1
    assert [e.event for e in await store.for_subjects(["u1"], limit=5)] == ["user_enabled"]


def test_retention_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        SecurityLog(MemoryStores().security_log, retention=timedelta(0))


async def test_LOG_01_a_users_log_has_sign_ins_failures_and_revocations(
    service: AuthService, clock: FrozenClock
) -> None:
    user = await service.register("ann@example.com", PASSWORD)
    clock.advance(timedelta(seconds=1))
    signed = await service.login("ann@example.com", PASSWORD, ip="192.0.2.9", user_agent="Tab/1")
    clock.advance(timedelta(seconds=1))
    with pytest.raises(InvalidCredentials):
        await service.login("ANN@example.com", "wrong password here", ip="192.0.2.66")
    clock.advance(timedelta(seconds=1))
    await service.disable_user(user.id)
    events = [e.event for e in await service.security_events(user)]
    assert events[-3:] == ["login_failed", "login_succeeded", "user_registered"]
    assert set(events[:-3]) == {"user_disabled", "sessions_ended_all"}
    [sign_in] = await service.security_events(user, events=SIGN_INS)
    assert (sign_in.ip, sign_in.user_agent) == ("192.0.2.9", "Tab/1")
    assert sign_in.handle == signed.session.record.handle
    assert signed.session.secret not in str(await service.security_events(user))


async def test_token_sign_ins_are_kept_too(service: AuthService) -> None:
    user = await service.register("ann@example.com", PASSWORD)
    pair = await service.token_login("ann@example.com", PASSWORD, ip="::1", user_agent="cli")
    [sign_in] = await service.security_events(user, events=SIGN_INS)
    assert (sign_in.handle, sign_in.user_agent) == (pair.family.id, "cli")


async def test_closing_the_service_writes_what_is_still_queued(service: AuthService) -> None:
    """No background writer ran (as in a CLI command): aclose() writes the queue."""
    user = await service.register("ann@example.com", PASSWORD)
    assert service.security_log.queued == 1
    await service.aclose()
    found = await service.stores.security_log.for_subjects([user.id], limit=5)
    assert [e.event for e in found] == ["user_registered"]


async def test_LOG_07_each_window_gets_the_budget_again_and_counts_the_rest(
    clock: FrozenClock,
) -> None:
    store = MemoryStores().security_log
    log = SecurityLog(store, now=clock, anonymous_budget=2)
    for _ in range(5):
        log.sink("dpop_proof_refused", {"reason": "junk"})
    clock.advance(timedelta(seconds=59))
    log.sink("registration_throttled", {"ip": "192.0.2.1"})  # same window: counted
    assert (log.queued, log.suppressed) == (2, 4)
    clock.advance(timedelta(seconds=1))
    for _ in range(3):
        log.sink("dpop_proof_refused", {"reason": "junk"})
    assert await log.flush()
    found = await store.for_subjects([ANONYMOUS], limit=50)
    assert sorted((e.event, e.detail) for e in found if "suppressed" in e.detail) == [
        ("dpop_proof_refused", '{"suppressed":3,"window_seconds":60}'),
        ("registration_throttled", '{"suppressed":1,"window_seconds":60}'),
    ]
    assert len(found) == 2 + 2 + 2  # two windows' budgets, one window's counts so far


async def test_LOG_07_stopping_the_writer_writes_the_open_windows_counts(
    clock: FrozenClock,
) -> None:
    store = MemoryStores().security_log
    log = SecurityLog(store, now=clock, anonymous_budget=0)
    writer = asyncio.create_task(log.run())
    for _ in range(7):
        log.sink("dpop_proof_refused", {"reason": "junk"})
    await asyncio.sleep(0)
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    [row] = await store.for_subjects([ANONYMOUS], limit=5)
    assert json.loads(row.detail) == {"suppressed": 7, "window_seconds": 60}


async def test_LOG_07_user_and_server_wide_events_are_never_limited(clock: FrozenClock) -> None:
    store = MemoryStores().security_log
    log = SecurityLog(store, now=clock, anonymous_budget=0)
    for n in range(50):
        log.sink("refresh_reuse_detected", {"user": "u1", "family": f"f{n}"})
        log.sink("signing_key_rotated", {"kid": f"k{n}"})
    assert (log.queued, log.suppressed) == (100, 0)
    await log.flush()
    assert len(await store.for_subjects([""], limit=100)) == 50


def test_the_anonymous_budget_must_make_sense() -> None:
    with pytest.raises(ValueError, match="anonymous window"):
        SecurityLog(MemoryStores().security_log, anonymous_window=timedelta(0))
    with pytest.raises(ValueError, match="budget"):
        SecurityLog(MemoryStores().security_log, anonymous_budget=-1)
