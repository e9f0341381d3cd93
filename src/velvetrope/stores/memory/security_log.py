"""The security log in memory (lost with the process)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from velvetrope.stores.anonymous_events import ANONYMOUS_ROWS, ANONYMOUS_SUBJECT
from velvetrope.stores.records import SecurityEventRecord

__all__ = ["MemorySecurityLogStore"]


class MemorySecurityLogStore:
    """Events in a list, oldest first."""

    anonymous_rows = ANONYMOUS_ROWS

    def __init__(self) -> None:
        self._events: list[SecurityEventRecord] = []

    async def add(self, events: Sequence[SecurityEventRecord]) -> None:
        self._events.extend(events)
        if any(e.subject == ANONYMOUS_SUBJECT for e in events):
            anonymous = sorted(
                (e for e in self._events if e.subject == ANONYMOUS_SUBJECT),
                key=lambda e: (e.at, e.id),
            )
            if len(anonymous) > self.anonymous_rows:
                trimmed = {id(e) for e in anonymous[: len(anonymous) - self.anonymous_rows]}
                self._events = [e for e in self._events if id(e) not in trimmed]

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
