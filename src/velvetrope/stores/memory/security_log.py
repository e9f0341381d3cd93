"""The security log in memory (lost with the process)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from velvetrope.stores.records import SecurityEventRecord

__all__ = ["MemorySecurityLogStore"]


class MemorySecurityLogStore:
    """Events in a list, oldest first."""

    def __init__(self) -> None:
        self._events: list[SecurityEventRecord] = []

    async def add(self, events: Sequence[SecurityEventRecord]) -> None:
        self._events.extend(events)

    async def for_subjects(
        self, subjects: Sequence[str], *, limit: int, events: Sequence[str] = ()
    ) -> Sequence[SecurityEventRecord]:
        wanted = set(subjects)
        kinds = set(events)
        found = [e for e in self._events if e.subject in wanted and (not kinds or e.event in kinds)]
        found.sort(key=lambda e: (e.at, e.id), reverse=True)
        return found[:limit]

    async def purge_before(self, cutoff: datetime) -> int:
        kept = [e for e in self._events if e.at >= cutoff]
        purged = len(self._events) - len(kept)
        self._events = kept
        return purged
