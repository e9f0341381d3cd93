"""The service's background work: periodic upkeep, and keeping in step with other nodes.

Three loops run for as long as the service serves (``AuthService.run_background``):

* every ``poll`` (1 s by default), replay the revocation feed and re-read the key ring,
  so a revocation or a key rotation made elsewhere is seen even if a push was lost;
* with a notifier, listen for pushes ("topic X changed") and re-read what they name
  at once: revocations arrive in milliseconds instead of within ``poll``;
* every ``purge_every`` (10 minutes), delete what has expired and rotate the signing
  key when it is due.

A store outage is logged and retried on the next round; it never stops the loops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from velvetrope.errors import AuthError
from velvetrope.stores.protocols import Notifier

__all__ = ["PURGE_EVERY", "Maintenance"]

PURGE_EVERY = timedelta(minutes=10)
_logger = logging.getLogger("velvetrope")

Job = Callable[[], Awaitable[object]]


class Maintenance:
    """Runs a service's periodic jobs and its push listener until cancelled."""

    def __init__(
        self,
        *,
        sync: Job,
        purge: Job,
        on_change: Callable[[str], Awaitable[None]],
        notifier: Notifier | None,
        poll: timedelta,
        purge_every: timedelta = PURGE_EVERY,
    ) -> None:
        """Args:
        sync: Replays what other nodes changed (revocations, keys).
        purge: Deletes what expired and rotates keys when due.
        on_change: Handles one pushed topic.
        notifier: The push channel between nodes, if the stores have one.
        poll: How often ``sync`` runs.
        purge_every: How often ``purge`` runs.
        """
        self._sync = sync
        self._purge = purge
        self._on_change = on_change
        self._notifier = notifier
        self._poll = poll.total_seconds()
        self._purge_every = purge_every.total_seconds()

    async def run(self) -> None:
        """Run until cancelled; never returns or raises otherwise."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(_every(self._purge_every, self._purge))
            tasks.create_task(_every(self._poll, self._sync))
            if self._notifier is not None:
                tasks.create_task(self._notifier.listen(self._pushed))

    async def _pushed(self, topic: str) -> None:
        try:
            await self._on_change(topic)
        except AuthError as exc:
            _logger.warning("push %s could not be applied: %s", topic, exc.detail)


async def _every(seconds: float, job: Job) -> None:
    """Run ``job`` every ``seconds``; a store outage is logged and retried, never fatal."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except AuthError as exc:
            _logger.warning("background job %s failed: %s", _name(job), exc.detail)


def _name(job: Job) -> str:
    return getattr(job, "__name__", type(job).__name__)
