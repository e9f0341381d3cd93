"""PostgreSQL accounts, sessions and sign-in counters (see the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from velvetrope.errors import EmailTaken
from velvetrope.stores.postgres._db import PostgresTable, count, maybe_utc, utc
from velvetrope.stores.records import (
    FailureRecord,
    SessionRecord,
    UserRecord,
    dump_claims,
    load_claims,
)

__all__ = ["PostgresSessionStore", "PostgresThrottleStore", "PostgresUserStore"]

UNLIMITED = 2**31 - 1
"""The ``count_if`` limit of a plain ``record_failure`` (the column's largest value)."""

_SESSION_COLUMNS = (
    "id_digest, handle, user_id, created_at, last_seen_at, expires_at, authenticated_at, "
    "ip, user_agent, email, claims, device_key"
)
_USER_COLUMNS = "id, email, password_hash, created_at, disabled, email_verified_at"
_EMAIL_CONSTRAINT = "users_email_key"

_GET_SESSION = f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id_digest = $1"
_INSERT_SESSION = (
    f"INSERT INTO sessions ({_SESSION_COLUMNS}) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
)


def _session(row: asyncpg.Record) -> SessionRecord:
    return SessionRecord(
        id_digest=row[0],
        handle=row[1],
        user_id=row[2],
        created_at=utc(row[3]),
        last_seen_at=utc(row[4]),
        expires_at=utc(row[5]),
        authenticated_at=utc(row[6]),
        ip=row[7],
        user_agent=row[8],
        email=row[9],
        claims=load_claims(row[10]),
        device_key=row[11],
    )


def _session_values(s: SessionRecord) -> tuple[object, ...]:
    return (
        s.id_digest,
        s.handle,
        s.user_id,
        s.created_at,
        s.last_seen_at,
        s.expires_at,
        s.authenticated_at,
        s.ip,
        s.user_agent,
        s.email,
        dump_claims(s.claims) if s.claims else "",
        s.device_key,
    )


def _user(row: asyncpg.Record) -> UserRecord:
    return UserRecord(
        id=row[0],
        email=row[1],
        password_hash=row[2],
        created_at=utc(row[3]),
        disabled=row[4],
        email_verified_at=maybe_utc(row[5]),
    )


class PostgresUserStore(PostgresTable):
    """Users in the ``users`` table, unique by email."""

    async def add(self, user: UserRecord) -> None:
        try:
            await self._write(
                f"INSERT INTO users ({_USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)",
                user.id,
                user.email,
                user.password_hash,
                user.created_at,
                user.disabled,
                user.email_verified_at,
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == _EMAIL_CONSTRAINT:
                raise EmailTaken from exc
            raise

    async def get(self, user_id: str) -> UserRecord | None:
        row = await self._one(f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1", user_id)
        return None if row is None else _user(row)

    async def get_by_email(self, email: str) -> UserRecord | None:
        row = await self._one(f"SELECT {_USER_COLUMNS} FROM users WHERE email = $1", email)
        return None if row is None else _user(row)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._write(
            "UPDATE users SET password_hash = $1 WHERE id = $2", password_hash, user_id
        )

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        await self._write("UPDATE users SET disabled = $1 WHERE id = $2", disabled, user_id)

    async def set_email_verified(self, user_id: str, at: datetime | None) -> None:
        await self._write("UPDATE users SET email_verified_at = $1 WHERE id = $2", at, user_id)

    async def list(self, *, limit: int = 100, offset: int = 0) -> Sequence[UserRecord]:
        rows = await self._all(
            f"SELECT {_USER_COLUMNS} FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2",
            limit,
            offset,
        )
        return [_user(r) for r in rows]


class PostgresSessionStore(PostgresTable):
    """Sessions in the ``sessions`` table, keyed by digest, indexed by user and expiry.

    Every ``get`` is one indexed query; :class:`PostgresStores` puts a near-cache in
    front, kept fresh by ``NOTIFY``.
    """

    async def add(self, session: SessionRecord) -> None:
        await self._write(_INSERT_SESSION, *_session_values(session))

    async def get(self, id_digest: str) -> SessionRecord | None:
        row = await self._one(_GET_SESSION, id_digest)
        return None if row is None else _session(row)

    async def touch(self, id_digest: str, last_seen_at: datetime) -> bool:
        # UPDATE, never upsert: a session deleted meanwhile stays deleted (SESS-09).
        changed = await self._write(
            "UPDATE sessions SET last_seen_at = $1 WHERE id_digest = $2", last_seen_at, id_digest
        )
        return changed == 1

    async def bind(self, id_digest: str, device_key: str) -> bool:
        # UPDATE, never upsert, as touch.
        changed = await self._write(
            "UPDATE sessions SET device_key = $1 WHERE id_digest = $2", device_key, id_digest
        )
        return changed == 1

    async def rotate(self, old_digest: str, new: SessionRecord) -> bool:
        # A concurrent rotation's DELETE waits on the row lock, then finds the row gone
        # (SESS-10): exactly one caller inserts its replacement.
        async with self._transaction() as conn:
            deleted = count(
                await conn.execute("DELETE FROM sessions WHERE id_digest = $1", old_digest)
            )
            if deleted == 1:
                await conn.execute(_INSERT_SESSION, *_session_values(new))
        return deleted == 1

    async def delete(self, id_digest: str) -> bool:
        return await self._write("DELETE FROM sessions WHERE id_digest = $1", id_digest) == 1

    async def delete_by_handle(self, user_id: str, handle: str) -> bool:
        deleted = await self._write(
            "DELETE FROM sessions WHERE user_id = $1 AND handle = $2", user_id, handle
        )
        return deleted == 1

    async def list_for_user(self, user_id: str) -> Sequence[SessionRecord]:
        rows = await self._all(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE user_id = $1 "
            "ORDER BY created_at, handle",
            user_id,
        )
        return [_session(r) for r in rows]

    async def delete_for_user(self, user_id: str, *, keep: str | None = None) -> int:
        return await self._write(
            "DELETE FROM sessions WHERE user_id = $1 AND id_digest IS DISTINCT FROM $2",
            user_id,
            keep,
        )

    async def purge_expired(self, now: datetime) -> int:
        return await self._write("DELETE FROM sessions WHERE expires_at <= $1", now)


class PostgresThrottleStore(PostgresTable):
    """Failure counters in the ``login_failures`` table."""

    async def get(self, key: str) -> FailureRecord | None:
        row = await self._one(
            "SELECT count, first_at, last_at FROM login_failures WHERE key = $1", key
        )
        return None if row is None else FailureRecord(row[0], utc(row[1]), utc(row[2]))

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
        # One statement: the conflict's row lock orders racing nodes (concurrent
        # failures never lose a count), and the WHERE (checked under it) writes and
        # returns nothing once the limit is reached.
        row = await self._one(
            "INSERT INTO login_failures AS f (key, count, first_at, last_at) "
            "VALUES ($1, 1, $2, $2) "
            "ON CONFLICT (key) DO UPDATE SET "
            "  count = CASE WHEN f.first_at < $3 THEN 1 ELSE f.count + 1 END, "
            "  first_at = CASE WHEN f.first_at < $3 THEN excluded.first_at ELSE f.first_at END, "
            "  last_at = excluded.last_at "
            "WHERE f.first_at < $3 OR f.count < $4 "
            "RETURNING count, first_at, last_at",
            key,
            now,
            window_start,
            limit,
        )
        return None if row is None else FailureRecord(row[0], utc(row[1]), utc(row[2]))

    async def release(self, key: str, *, first_at: datetime) -> bool:
        return (
            await self._write(
                "UPDATE login_failures SET count = count - 1 "
                "WHERE key = $1 AND first_at = $2 AND count > 0",
                key,
                first_at,
            )
            == 1
        )

    async def clear(self, key: str) -> None:
        await self._write("DELETE FROM login_failures WHERE key = $1", key)

    async def purge_before(self, cutoff: datetime) -> int:
        """Delete counters whose last failure is older than ``cutoff``."""
        return await self._write("DELETE FROM login_failures WHERE last_at < $1", cutoff)
