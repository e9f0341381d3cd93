"""SQLite accounts, sessions and sign-in counters (see the package docstring)."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from time import monotonic
from typing import Any

from velvetrope.errors import EmailTaken
from velvetrope.stores.records import (
    FailureRecord,
    SessionRecord,
    UserRecord,
    dump_claims,
    load_claims,
)
from velvetrope.stores.sqlite._db import Database, SQLiteTable, dt, ts

__all__ = ["SQLiteSessionStore", "SQLiteThrottleStore", "SQLiteUserStore"]

UNLIMITED = 2**31 - 1
"""The ``count_if`` limit of a plain ``record_failure`` (the column's largest value)."""

_SESSION_COLUMNS = (
    "id_digest, handle, user_id, created_at, last_seen_at, expires_at, authenticated_at, "
    "ip, user_agent, email, claims, device_key"
)
_USER_COLUMNS = "id, email, password_hash, created_at, disabled, email_verified_at"


def _session(row: Sequence[Any]) -> SessionRecord:
    return SessionRecord(
        id_digest=row[0],
        handle=row[1],
        user_id=row[2],
        created_at=dt(row[3]),
        last_seen_at=dt(row[4]),
        expires_at=dt(row[5]),
        authenticated_at=dt(row[6]),
        ip=row[7],
        user_agent=row[8],
        email=row[9],
        claims=load_claims(row[10]),
        device_key=row[11],
    )


def _user(row: Sequence[Any]) -> UserRecord:
    return UserRecord(
        id=row[0],
        email=row[1],
        password_hash=row[2],
        created_at=dt(row[3]),
        disabled=bool(row[4]),
        email_verified_at=None if row[5] is None else dt(row[5]),
    )


class SQLiteUserStore(SQLiteTable):
    """Users in the ``users`` table."""

    async def add(self, user: UserRecord) -> None:
        try:
            self._write(
                f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    user.id,
                    user.email,
                    user.password_hash,
                    ts(user.created_at),
                    user.disabled,
                    None if user.email_verified_at is None else ts(user.email_verified_at),
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise EmailTaken from exc

    async def get(self, user_id: str) -> UserRecord | None:
        row = self._one(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
        return None if row is None else _user(row)

    async def get_by_email(self, email: str) -> UserRecord | None:
        row = self._one(f"SELECT {_USER_COLUMNS} FROM users WHERE email = ?", (email,))
        return None if row is None else _user(row)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self._write("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        self._write("UPDATE users SET disabled = ? WHERE id = ?", (disabled, user_id))

    async def set_email_verified(self, user_id: str, at: datetime | None) -> None:
        verified = None if at is None else ts(at)
        self._write("UPDATE users SET email_verified_at = ? WHERE id = ?", (verified, user_id))

    async def list(self, *, limit: int = 100, offset: int = 0) -> Sequence[UserRecord]:
        rows = self._all(
            f"SELECT {_USER_COLUMNS} FROM users ORDER BY created_at, id LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [_user(r) for r in rows]


OUTSIDE_WRITES_WITHIN = 1.0
"""Seconds within which the session cache notices a write made outside velvetrope
(plain SQL on the file), which moves no write epoch; velvetrope's own writes, from any
process, are noticed on the next request."""

_GET_SESSION = f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id_digest = ?"
_SESSION_CACHE_SIZE = 10_000


class SQLiteSessionStore(SQLiteTable):
    """Sessions in the ``sessions`` table, keyed by digest, indexed by user.

    Reads go through a near-cache that another velvetrope process's write never leaves
    stale. ``PRAGMA data_version`` changes whenever *another* connection (another
    worker, the CLI) has committed; then the cache is dropped. The pragma costs 6 to
    15 µs, so a ``get`` asks it only when the database's shared write epoch
    (``Database.writes``, moved after every commit by every velvetrope process) is not
    where it was at the last pragma, and at least once a second
    (:data:`OUTSIDE_WRITES_WITHIN`) for writes made outside velvetrope (plain SQL),
    which move no epoch. A hit in between costs one read of a mapped word. This
    connection's own writes update the cache as they go. Misses are not cached, so
    random IDs cost no memory.
    """

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._cache: dict[str, SessionRecord] = {}
        self._version: int | None = None
        self._writes_seen: int | None = None  # the write epoch at the last pragma
        self._sweep_at = 0.0  # monotonic time of the next pragma, writes or not

    def forget(self) -> None:
        """Drop the near-cache (the connection was reopened)."""
        self._cache.clear()
        self._version = None
        self._writes_seen = None

    def _fresh_cache(self) -> dict[str, SessionRecord]:
        writes = self._db.writes
        if writes is not None:
            # Read before the pragma: a commit after this read moves the epoch again,
            # so the next get asks once more (never fewer pragmas than changes).
            epoch, now = writes.read(), monotonic()
            if epoch == self._writes_seen and now < self._sweep_at:
                return self._cache
            self._writes_seen, self._sweep_at = epoch, now + OUTSIDE_WRITES_WITHIN
        version = self._one("PRAGMA data_version", ())[0]
        if version != self._version:
            self._cache.clear()
            self._version = version
        return self._cache

    async def add(self, session: SessionRecord) -> None:
        self._insert(session)

    def _insert(self, s: SessionRecord) -> None:
        self._write(
            f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES ({', '.join('?' * 12)})",
            (
                s.id_digest,
                s.handle,
                s.user_id,
                ts(s.created_at),
                ts(s.last_seen_at),
                ts(s.expires_at),
                ts(s.authenticated_at),
                s.ip,
                s.user_agent,
                s.email,
                dump_claims(s.claims) if s.claims else "",
                s.device_key,
            ),
        )

    async def get(self, id_digest: str) -> SessionRecord | None:
        cache = self._fresh_cache()
        cached = cache.get(id_digest)
        if cached is not None:
            return cached
        row = self._one(_GET_SESSION, (id_digest,))
        if row is None:
            return None
        session = _session(row)
        if len(cache) >= _SESSION_CACHE_SIZE:
            cache.clear()
        cache[id_digest] = session
        return session

    async def touch(self, id_digest: str, last_seen_at: datetime) -> bool:
        # UPDATE, never upsert: a session deleted meanwhile stays deleted (SESS-09).
        changed = self._write(
            "UPDATE sessions SET last_seen_at = ? WHERE id_digest = ?",
            (ts(last_seen_at), id_digest),
        )
        cached = self._cache.pop(id_digest, None)
        if changed == 1 and cached is not None:
            self._cache[id_digest] = dataclasses.replace(cached, last_seen_at=last_seen_at)
        return changed == 1

    async def bind(self, id_digest: str, device_key: str) -> bool:
        # UPDATE, never upsert, as touch.
        changed = self._write(
            "UPDATE sessions SET device_key = ? WHERE id_digest = ?", (device_key, id_digest)
        )
        cached = self._cache.pop(id_digest, None)
        if changed == 1 and cached is not None:
            self._cache[id_digest] = dataclasses.replace(cached, device_key=device_key)
        return changed == 1

    async def rotate(self, old_digest: str, new: SessionRecord) -> bool:
        self._cache.pop(old_digest, None)
        with self._transaction() as conn:
            deleted = conn.execute(
                "DELETE FROM sessions WHERE id_digest = ?", (old_digest,)
            ).rowcount
            if deleted == 1:
                self._insert(new)
        return bool(deleted == 1)

    async def delete(self, id_digest: str) -> bool:
        self._cache.pop(id_digest, None)
        return self._write("DELETE FROM sessions WHERE id_digest = ?", (id_digest,)) == 1

    async def delete_by_handle(self, user_id: str, handle: str) -> bool:
        self._cache.clear()  # rare; keyed by handle, not digest
        deleted = self._write(
            "DELETE FROM sessions WHERE user_id = ? AND handle = ?", (user_id, handle)
        )
        return deleted == 1

    async def list_for_user(self, user_id: str) -> Sequence[SessionRecord]:
        rows = self._all(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE user_id = ? "
            "ORDER BY created_at, handle",
            (user_id,),
        )
        return [_session(r) for r in rows]

    async def delete_for_user(self, user_id: str, *, keep: str | None = None) -> int:
        self._cache.clear()
        return self._write(
            "DELETE FROM sessions WHERE user_id = ? AND id_digest IS NOT ?", (user_id, keep)
        )

    async def purge_expired(self, now: datetime) -> int:
        self._cache.clear()
        return self._write("DELETE FROM sessions WHERE expires_at <= ?", (ts(now),))


class SQLiteThrottleStore(SQLiteTable):
    """Failure counters in the ``login_failures`` table."""

    async def get(self, key: str) -> FailureRecord | None:
        row = self._one("SELECT count, first_at, last_at FROM login_failures WHERE key = ?", (key,))
        return None if row is None else FailureRecord(row[0], dt(row[1]), dt(row[2]))

    async def record_failure(
        self, key: str, now: datetime, *, window_start: datetime
    ) -> FailureRecord:
        record = await self.count_if(key, now, window_start=window_start, limit=UNLIMITED)
        assert record is not None  # noqa: S101 - nothing counts up to UNLIMITED
        return record

    async def count_if(
        self, key: str, now: datetime, *, window_start: datetime, limit: int
    ) -> FailureRecord | None:
        if limit < 1:
            return None
        # One statement takes SQLite's write lock for the compare and the count
        # together (concurrent failures from several processes never lose a count);
        # the WHERE writes and returns nothing once the limit is reached.
        row = self._one(
            "INSERT INTO login_failures (key, count, first_at, last_at) VALUES (?, 1, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET "
            "  count = CASE WHEN first_at < ? THEN 1 ELSE count + 1 END, "
            "  first_at = CASE WHEN first_at < ? THEN excluded.first_at ELSE first_at END, "
            "  last_at = excluded.last_at "
            "WHERE first_at < ? OR count < ? "
            "RETURNING count, first_at, last_at",
            (key, ts(now), ts(now), *(ts(window_start),) * 3, limit),
        )
        return None if row is None else FailureRecord(row[0], dt(row[1]), dt(row[2]))

    async def release(self, key: str, *, first_at: datetime) -> bool:
        return (
            self._write(
                "UPDATE login_failures SET count = count - 1 "
                # Within 2 us: the REAL column may not round-trip the last digit.
                "WHERE key = ? AND abs(first_at - ?) < 0.000002 AND count > 0",
                (key, ts(first_at)),
            )
            == 1
        )

    async def clear(self, key: str) -> None:
        self._write("DELETE FROM login_failures WHERE key = ?", (key,))

    async def purge_before(self, cutoff: datetime) -> int:
        """Delete counters whose last failure is older than ``cutoff``."""
        return self._write("DELETE FROM login_failures WHERE last_at < ?", (ts(cutoff),))
