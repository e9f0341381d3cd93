"""The security log in PostgreSQL (``security_events``, migration 4)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from velvetrope.stores.anonymous_events import ANONYMOUS_ROWS, ANONYMOUS_SUBJECT
from velvetrope.stores.postgres._db import PostgresTable, utc
from velvetrope.stores.records import SecurityEventRecord, security_event_from_row

__all__ = ["PostgresSecurityLogStore"]

_COLUMNS = "id, at, event, subject, ip, user_agent, handle, detail"
# The anonymous rows past the newest ANONYMOUS_ROWS.
_TRIM = (
    "DELETE FROM security_events WHERE subject = $1 AND (at, id) <= ("
    "SELECT at, id FROM security_events WHERE subject = $1 "
    "ORDER BY at DESC, id DESC LIMIT 1 OFFSET $2)"
)


class PostgresSecurityLogStore(PostgresTable):
    """Events in ``security_events``, indexed by subject and time; a batch is one
    statement (``unnest`` of one array per column)."""

    anonymous_rows = ANONYMOUS_ROWS

    async def add(self, events: Sequence[SecurityEventRecord]) -> None:
        if not events:
            return
        await self._write(
            f"INSERT INTO security_events ({_COLUMNS}) SELECT * FROM unnest("
            "$1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], "
            "$7::text[], $8::text[])",
            [e.id for e in events],
            [e.at for e in events],
            [e.event for e in events],
            [e.subject for e in events],
            [e.ip for e in events],
            [e.user_agent for e in events],
            [e.handle for e in events],
            [e.detail for e in events],
        )
        if any(e.subject == ANONYMOUS_SUBJECT for e in events):
            await self._write(_TRIM, ANONYMOUS_SUBJECT, self.anonymous_rows)

    async def for_subjects(
        self, subjects: Sequence[str], *, limit: int, events: Sequence[str] = ()
    ) -> Sequence[SecurityEventRecord]:
        if not subjects:
            return []
        rows = await self._all(
            f"SELECT {_COLUMNS} FROM security_events WHERE subject = ANY($1::text[]) "
            "AND (cardinality($2::text[]) = 0 OR event = ANY($2::text[])) "
            "ORDER BY at DESC, id DESC LIMIT $3",
            list(subjects),
            list(events),
            limit,
        )
        return [security_event_from_row(tuple(r), utc(r[1])) for r in rows]

    async def purge_before(self, cutoff: datetime) -> int:
        return await self._write("DELETE FROM security_events WHERE at < $1", cutoff)
