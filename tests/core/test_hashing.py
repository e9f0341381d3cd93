"""Admission control for password hashing: bounded queue, wait limit, lower priority."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from datetime import timedelta

import pytest

from tests.support.require import require
from tests.support.services import PASSWORD, started_service
from velvetrope import FrozenClock
from velvetrope.core.hashing import HashWorkers
from velvetrope.core.passwords import PasswordHasher
from velvetrope.core.ratelimit import LoginThrottle
from velvetrope.errors import HashingBusy, InvalidCredentials, TooManyAttempts
from velvetrope.stores.memory import MemoryStores
from velvetrope.web.errors import error_response


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _until(condition: threading.Event) -> None:
    # The worker thread sets a threading.Event; wait for it without blocking the loop.
    assert await asyncio.to_thread(condition.wait, 10)


async def test_PERF_03_a_full_queue_is_refused_at_once_without_hashing() -> None:
    workers = HashWorkers(workers=1, queue=2)
    release, started = threading.Event(), threading.Event()
    ran: list[int] = []

    def held(n: int) -> int:
        started.set()
        release.wait(10)
        ran.append(n)
        return n

    tasks = [asyncio.create_task(workers.run(held, n)) for n in range(6)]
    await _until(started)
    await asyncio.sleep(0)  # every task has been admitted or refused by now
    refused = [t for t in tasks if t.done() and isinstance(t.exception(), HashingBusy)]
    assert len(refused) == 3  # one running, two waiting, three refused
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sorted(r for r in results if isinstance(r, int)) == [0, 1, 2]
    assert sorted(ran) == [0, 1, 2]  # the refused ones never hashed
    status = workers.status()
    assert (status.refused_full, status.completed, status.in_flight) == (3, 3, 0)
    workers.close()


async def test_PERF_03_a_check_that_waited_too_long_is_refused_when_its_turn_comes() -> None:
    clock = Clock()
    workers = HashWorkers(workers=1, queue=4, max_wait=timedelta(seconds=2), monotonic=clock)
    release, started = threading.Event(), threading.Event()

    def first() -> str:
        started.set()
        release.wait(10)
        return "first"

    running = asyncio.create_task(workers.run(first))
    await _until(started)
    waiting = asyncio.create_task(workers.run(lambda: "second"))
    await asyncio.sleep(0)
    clock.now += 2.5  # the second check has now waited past the limit
    release.set()
    assert await running == "first"
    with pytest.raises(HashingBusy) as refused:
        await waiting
    assert refused.value.retry_after == timedelta(seconds=1)
    assert workers.status().refused_waited == 1
    workers.close()


async def test_PERF_03_hashing_threads_run_at_a_lower_priority() -> None:
    require(sys.platform.startswith("linux"), "per-thread nice values are Linux's")
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    require(base <= 14, "this process already runs at a nice value near the floor")
    workers = HashWorkers(workers=1, nice=5)

    def own_priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    assert await workers.run(own_priority) == base + 5
    # The event loop's own thread keeps its priority.
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base
    workers.close()


async def test_PERF_03_the_hasher_sheds_with_a_503_and_retry_after() -> None:
    hasher = PasswordHasher("test-only", max_concurrency=1, max_waiting=0)
    release = threading.Event()
    hasher.workers._pool().submit(release.wait, 10)  # occupy the only worker
    first = asyncio.create_task(hasher.hash("first correct horse battery"))
    await asyncio.sleep(0)
    with pytest.raises(HashingBusy) as busy:
        await hasher.hash("second correct horse battery")
    assert isinstance(busy.value, TooManyAttempts)  # callers that catch throttling still do
    response = error_response(busy.value)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert b'"hashing_busy"' in response.body
    release.set()
    assert (await first).startswith("$argon2id$")
    hasher.close()


def test_PERF_03_bounds_are_checked() -> None:
    for bad in (
        {"workers": 0},
        {"queue": -1},
        {"max_wait": timedelta(0)},
        {"nice": 20},
    ):
        with pytest.raises(ValueError, match="hash workers"):
            HashWorkers(**bad)


async def test_PERF_03_a_sign_in_shed_for_a_full_queue_counts_against_nobody(
    clock: FrozenClock,
) -> None:
    """The queue is checked before the throttle: a flood's shed attempts cost no store
    writes, and cannot push a victim's account or address towards a lock-out."""
    hasher = PasswordHasher("test-only", max_concurrency=1, max_waiting=0)
    service = await started_service(MemoryStores(), clock=clock, hasher=hasher)
    await service.register("ann@example.com", PASSWORD)
    release = threading.Event()
    hasher.workers._pool().submit(release.wait, 10)
    hasher.workers._in_flight += 1  # as run() counts the check it occupies the worker with
    try:
        for _ in range(3):
            with pytest.raises(HashingBusy):
                await service.login("ann@example.com", "a wrong password", ip="192.0.2.7")
        throttle = service.stores.throttle
        assert await throttle.get(LoginThrottle._account_key("ann@example.com")) is None
        assert await throttle.get(LoginThrottle._ip_key("192.0.2.7")) is None
        assert hasher.workers.status().refused_full == 3
    finally:
        release.set()
        hasher.workers._in_flight -= 1
        await service.aclose()
    # With room again, the same attempt is hashed and counted.
    hasher = PasswordHasher("test-only")
    service = await started_service(MemoryStores(), clock=clock, hasher=hasher)
    try:
        await service.register("ann@example.com", PASSWORD)
        with pytest.raises(InvalidCredentials):
            await service.login("ann@example.com", "a wrong password", ip="192.0.2.7")
        failures = await service.stores.throttle.get(LoginThrottle._account_key("ann@example.com"))
        assert failures is not None
        assert failures.count == 1
    finally:
        await service.aclose()
