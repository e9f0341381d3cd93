"""The security log in SQLite (``security_events``, migration 5)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from velvetrope.stores.anonymous_events import ANONYMOUS_ROWS, ANONYMOUS_SUBJECT
from velvetrope.stores.records import SecurityEventRecord, security_event_from_row
from velvetrope.stores.sqlite._db import SQLiteTable, dt, ts

__all__ = ["SQLiteSecurityLogStore"]

_COLUMNS = "id, at, event, subject, ip, user_agent, handle, detail"
# The anonymous rows past the newest ANONYMOUS_ROWS (row values: SQLite 3.15+).
_TRIM = (
    "DELETE FROM security_events WHERE subject = ?1 AND (at, id) <= ("
    "SELECT at, id FROM security_events WHERE subject = ?1 "
    "ORDER BY at DESC, id DESC LIMIT 1 OFFSET ?2)"
)


def _row(event: SecurityEventRecord) -> tuple[object, ...]:
    return (
        event.id,
        ts(event.at),
        event.event,
        event.subject,
        event.ip,
        event.user_agent,
        event.handle,
        event.detail,
    )


class SQLiteSecurityLogStore(SQLiteTable):
    """Events in ``security_events``, indexed by subject and time."""

    anonymous_rows = ANONYMOUS_ROWS

    async def add(self, events: Sequence[SecurityEventRecord]) -> None:
        if not events:
            return
        with self._transaction() as conn:  # sqlite3 errors fail closed (StoreUnavailable)
            conn.executemany(
                f"INSERT INTO security_events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [_row(e) for e in events],
            )
            if any(e.subject == ANONYMOUS_SUBJECT for e in events):
                conn.execute(_TRIM, (ANONYMOUS_SUBJECT, self.anonymous_rows))

    async def for_subjects(
        self, subjects: Sequence[str], *, limit: int, events: Sequence[str] = ()
    ) -> Sequence[SecurityEventRecord]:
        if not subjects:
            return []
        where = f"subject IN ({', '.join('?' * len(subjects))})"
        params: list[object] = list(subjects)
        if events:
            where += f" AND event IN ({', '.join('?' * len(events))})"
            params.extend(events)
        rows = self._all(
            f"SELECT {_COLUMNS} FROM security_events WHERE {where} "
            "ORDER BY at DESC, id DESC LIMIT ?",
            [*params, limit],
        )
        return [security_event_from_row(r, dt(r[1])) for r in rows]

    async def purge_before(self, cutoff: datetime) -> int:
        return self._write("DELETE FROM security_events WHERE at < ?", (ts(cutoff),))
