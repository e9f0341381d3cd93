"""Admission control for password hashing: a bounded queue in front of low-priority workers.

Argon2id is expensive on purpose (tens of milliseconds and 64 MiB a hash, with four
lanes of its own threads), and a flood of sign-ins must not take the CPU from the
requests that are already signed in. :class:`HashWorkers` runs every hash on threads
of its own and keeps the rest of the process in charge:

* **Bounded work.** At most ``workers`` hashes run at once and ``queue`` more may wait;
  a check that arrives past that is refused at once with
  :class:`~velvetrope.errors.HashingBusy` (503 and ``Retry-After``), without hashing.
* **Queue-time limit.** A check that waited ``max_wait`` for a worker is refused the
  same way when its turn comes, instead of hashing for a client that has probably
  given up (its answer would arrive too late to matter, and the work delays every
  check behind it).
* **Lower CPU priority.** On Linux the worker threads lower their own scheduling
  priority by ``nice`` (and argon2's lane threads inherit it), so when the CPU is
  contended the event loop, which serves authenticated requests, is scheduled first;
  sign-ins take what is left. Elsewhere the priority stays as it is.
* **Cancellation.** A check whose request went away is dropped from the queue if it
  has not started yet.

The workers are the process's own threads (argon2-cffi releases the GIL while it
hashes), not a process pool: a hash costs far more than a thread switch, and a pool
would copy every password to another process for nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from velvetrope.errors import HashingBusy

__all__ = ["HashWorkers", "HashWorkersStatus"]

T = TypeVar("T")

BUSY_DETAIL = "The server is busy checking passwords; try again shortly."


@dataclass(frozen=True, slots=True)
class HashWorkersStatus:
    """What ``/ready`` reports of the hashing workers.

    Attributes:
        workers: Hashes that may run at once.
        queue: Checks that may wait for a worker.
        max_wait: How long one may wait before it is refused.
        nice: The workers' priority increment (0: same as the event loop).
        in_flight: Checks running or waiting now.
        completed: Hashes done.
        refused_full: Checks refused because the queue was full.
        refused_waited: Checks refused because they waited too long.
    """

    workers: int
    queue: int
    max_wait: timedelta
    nice: int
    in_flight: int
    completed: int
    refused_full: int
    refused_waited: int


class _Expired(Exception):
    """A queued check waited past its limit (raised on the worker, turned into HashingBusy)."""


def _lower_priority(increment: int) -> None:
    # Linux keeps a nice value per thread: lower this worker's own (PRIO_PROCESS with a
    # thread id). Threads argon2 starts from here inherit it. Raising it needs no
    # privilege; an error leaves the priority as it was.
    if increment <= 0 or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + increment))
    except OSError:
        return


class HashWorkers:
    """Runs password hashes off the event loop under a bound, a wait limit and a priority."""

    def __init__(
        self,
        *,
        workers: int = 2,
        queue: int = 32,
        max_wait: timedelta = timedelta(seconds=2),
        nice: int = 19,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Args:
        workers: Hashes that may run at once (at least 1).
        queue: Checks that may wait beyond those (0: none wait).
        max_wait: The longest a check may wait for a worker (positive).
        nice: Priority increment of the worker threads, 0 to 19.
        monotonic: Seconds on a monotonic clock (injected by tests).

        Raises:
            ValueError: A bound is out of range.
        """
        if workers < 1 or queue < 0 or max_wait <= timedelta(0) or not 0 <= nice <= 19:
            raise ValueError("hash workers: workers >= 1, queue >= 0, max_wait > 0, nice 0-19")
        self.workers = workers
        self.queue = queue
        self.max_wait = max_wait
        self.nice = nice
        self._max_wait_s = max_wait.total_seconds()
        self._monotonic = monotonic
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._in_flight = 0
        self._completed = 0
        self._refused_full = 0
        self._refused_waited = 0

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.workers,
                thread_name_prefix="velvetrope-hash",
                initializer=_lower_priority,
                initargs=(self.nice,),
            )
        return self._executor

    def _busy(self) -> HashingBusy:
        return HashingBusy(timedelta(seconds=1), BUSY_DETAIL)

    async def run(self, func: Callable[..., T], *args: object) -> T:
        """Run ``func(*args)`` on a hashing worker and return its result.

        Raises:
            HashingBusy: The queue is full, or the check waited past ``max_wait``.
        """
        # Counted here, when the check arrives, and released when the work is really
        # over (run, refused or cancelled before it started), so the bound holds even
        # for requests that went away while their hash was running.
        self.refuse_if_full()
        self._in_flight += 1
        queued_at = self._monotonic()

        def work() -> T:
            if self._monotonic() - queued_at > self._max_wait_s:
                raise _Expired
            return func(*args)

        try:
            future = self._pool().submit(work)
        except BaseException:
            self._in_flight -= 1
            raise
        loop = asyncio.get_running_loop()

        def released(_: object) -> None:
            try:
                loop.call_soon_threadsafe(self._release)
            except RuntimeError:  # the loop is closed: nobody counts any more
                return

        future.add_done_callback(released)
        try:
            result = await asyncio.wrap_future(future)
        except _Expired:
            self._refused_waited += 1
            raise self._busy() from None
        self._completed += 1
        return result

    def refuse_if_full(self) -> None:
        """Refuse now if a check arriving now would be refused for a full queue: lets a
        caller skip the work it does before hashing (a sign-in's throttle counters)
        when that work would be for nothing.

        Raises:
            HashingBusy: Every worker is busy and the queue is full.
        """
        if self._in_flight >= self.workers + self.queue:
            self._refused_full += 1
            raise self._busy()

    def _release(self) -> None:
        self._in_flight -= 1

    def status(self) -> HashWorkersStatus:
        """A snapshot of the bounds and counters."""
        return HashWorkersStatus(
            workers=self.workers,
            queue=self.queue,
            max_wait=self.max_wait,
            nice=self.nice,
            in_flight=self._in_flight,
            completed=self._completed,
            refused_full=self._refused_full,
            refused_waited=self._refused_waited,
        )

    def close(self) -> None:
        """Stop the workers once the hashes in progress are done; queued ones are dropped."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
