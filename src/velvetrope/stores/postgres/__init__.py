"""PostgreSQL stores: every node of a deployment shares one database.

``PostgresStores(dsn)`` opens nothing until ``start()``, which creates an asyncpg pool
(bounded connect, acquire and command timeouts) and applies the migrations in
:mod:`velvetrope.stores.postgres.schema` under an advisory lock, so several nodes
starting at once migrate once. Give ``schema=`` to keep the tables in their own
PostgreSQL schema (created if missing) instead of the search path's first one.

Durability is PostgreSQL's: a committed write survives a restart or crash of the
server. Availability fails closed: while the server cannot be reached every call
raises :class:`~velvetrope.errors.StoreUnavailable` within the timeouts, and the pool
reconnects by itself once the server is back (no restart of velvetrope needed).
Expired sessions, refresh families and feed entries stay until the ``purge_expired``
methods (the app's periodic job) delete them; core code never trusts an expired one.
Revocations, key rotations and session changes (which keep each node's session
near-cache fresh: :mod:`velvetrope.stores.cached_sessions`) are pushed to the other
nodes with ``LISTEN``/``NOTIFY``
(:class:`~velvetrope.stores.postgres.notifier.PostgresNotifier`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from velvetrope.errors import ConfigurationError, EmailTaken, StoreUnavailable
from velvetrope.stores.cached_sessions import DEFAULT_TTL, CachedSessionStore
from velvetrope.stores.postgres._db import FAILURES, Database, PostgresTable, count, utc
from velvetrope.stores.postgres.notifier import PostgresNotifier, channel_name
from velvetrope.stores.postgres.schema import check_schema_name, lock_key, migrate
from velvetrope.stores.postgres.tokens import (
    PostgresKeyStore,
    PostgresRefreshStore,
    PostgresRevocationStore,
)
from velvetrope.stores.records import FailureRecord, SessionRecord, UserRecord

__all__ = [
    "PostgresKeyStore",
    "PostgresNotifier",
    "PostgresRefreshStore",
    "PostgresRevocationStore",
    "PostgresSessionStore",
    "PostgresStores",
    "PostgresThrottleStore",
    "PostgresUserStore",
]

_SESSION_COLUMNS = (
    "id_digest, handle, user_id, created_at, last_seen_at, expires_at, authenticated_at, "
    "ip, user_agent"
)
_USER_COLUMNS = "id, email, password_hash, created_at, disabled"
_EMAIL_CONSTRAINT = "users_email_key"

_GET_SESSION = f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id_digest = $1"
_INSERT_SESSION = (
    f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
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
    )


def _user(row: asyncpg.Record) -> UserRecord:
    return UserRecord(
        id=row[0],
        email=row[1],
        password_hash=row[2],
        created_at=utc(row[3]),
        disabled=row[4],
    )


class PostgresUserStore(PostgresTable):
    """Users in the ``users`` table, unique by email."""

    async def add(self, user: UserRecord) -> None:
        try:
            await self._write(
                f"INSERT INTO users ({_USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5)",
                user.id,
                user.email,
                user.password_hash,
                user.created_at,
                user.disabled,
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
        # One statement: concurrent failures from several nodes never lose a count.
        row = await self._one(
            "INSERT INTO login_failures AS f (key, count, first_at, last_at) "
            "VALUES ($1, 1, $2, $2) "
            "ON CONFLICT (key) DO UPDATE SET "
            "  count = CASE WHEN f.first_at < $3 THEN 1 ELSE f.count + 1 END, "
            "  first_at = CASE WHEN f.first_at < $3 THEN excluded.first_at ELSE f.first_at END, "
            "  last_at = excluded.last_at "
            "RETURNING count, first_at, last_at",
            key,
            now,
            window_start,
        )
        assert row is not None  # noqa: S101 - INSERT ... RETURNING always returns the row
        return FailureRecord(row[0], utc(row[1]), utc(row[2]))

    async def clear(self, key: str) -> None:
        await self._write("DELETE FROM login_failures WHERE key = $1", key)

    async def purge_before(self, cutoff: datetime) -> int:
        """Delete counters whose last failure is older than ``cutoff``."""
        return await self._write("DELETE FROM login_failures WHERE last_at < $1", cutoff)


class PostgresStores:
    """Every store in one PostgreSQL database (or one schema of it), over one pool.

    Args:
        dsn: ``postgresql://user:password@host:port/database`` (``postgres://`` too,
            and any libpq-style parameters asyncpg understands, such as ``sslmode``).
        min_size: Connections the pool keeps open (and restores after an outage).
        max_size: Most connections the pool opens.
        schema: Keep the tables in this schema (created if missing), not in the first
            schema of the search path.
        connect_timeout: Seconds to establish one connection.
        acquire_timeout: Seconds a query waits for a pooled connection (including
            connecting it) before failing closed.
        command_timeout: Seconds one statement may run before failing closed.
        close_timeout: Seconds ``aclose()`` waits for a graceful close before it
            terminates the connections.
        session_cache_ttl: The staleness bound of this node's session near-cache
            (see :mod:`velvetrope.stores.cached_sessions`); zero turns it off.

    Attributes:
        schema_version_before: The schema version ``start()`` found (0 for a fresh
            database), or ``None`` before it ran.
        schema_version: The schema version after ``start()``, or ``None`` before.

    Raises:
        ConfigurationError: ``schema`` is not a plain identifier, or a size is invalid.
    """

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        schema: str | None = None,
        connect_timeout: float = 5.0,
        acquire_timeout: float = 5.0,
        command_timeout: float = 10.0,
        close_timeout: float = 5.0,
        session_cache_ttl: timedelta = DEFAULT_TTL,
    ) -> None:
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ConfigurationError(
                f"PostgreSQL pool sizes must satisfy 0 <= min_size <= max_size, max_size >= 1 "
                f"(got {min_size} and {max_size})"
            )
        self._dsn = dsn
        self._schema = None if schema is None else check_schema_name(schema)
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._close_timeout = close_timeout
        self._start_lock = asyncio.Lock()
        self._db = Database(acquire_timeout=acquire_timeout)
        self._users = PostgresUserStore(self._db)
        self._throttle = PostgresThrottleStore(self._db)
        self._keys = PostgresKeyStore(self._db)
        self._refresh = PostgresRefreshStore(self._db)
        self._revocations = PostgresRevocationStore(
            self._db, append_lock=lock_key("revocations", self._schema)
        )
        self._notifier = PostgresNotifier(
            self._db, self._connect_listener, channel=channel_name(self._schema)
        )
        self._sessions = CachedSessionStore(
            PostgresSessionStore(self._db), self._notifier, ttl=session_cache_ttl
        )
        self.schema_version_before: int | None = None
        self.schema_version: int | None = None

    @property
    def schema(self) -> str | None:
        """The PostgreSQL schema holding the tables, or ``None`` for the search path's first."""
        return self._schema

    @property
    def users(self) -> PostgresUserStore:
        return self._users

    @property
    def sessions(self) -> CachedSessionStore:
        """Sessions in PostgreSQL behind this node's near-cache."""
        return self._sessions

    @property
    def throttle(self) -> PostgresThrottleStore:
        return self._throttle

    @property
    def keys(self) -> PostgresKeyStore:
        return self._keys

    @property
    def refresh(self) -> PostgresRefreshStore:
        return self._refresh

    @property
    def revocations(self) -> PostgresRevocationStore:
        return self._revocations

    @property
    def notifier(self) -> PostgresNotifier:
        """``LISTEN``/``NOTIFY`` on a channel of this installation's own."""
        return self._notifier

    async def start(self) -> None:
        """Create the pool, migrate the database and start the session cache's listener
        (waiting for its ``LISTEN`` at most the connect timeout); a no-op once started.

        Raises:
            StoreUnavailable: PostgreSQL cannot be reached or refused the connection.
            ConfigurationError: The DSN is malformed, or the database's schema is newer
                than this velvetrope.
        """
        async with self._start_lock:
            if self._db.pool is not None:
                return
            pool = await self._create_pool()
            try:
                async with pool.acquire(timeout=self._db.acquire_timeout) as conn:
                    before, after = await migrate(conn, schema=self._schema)
            except BaseException as exc:
                pool.terminate()
                if isinstance(exc, FAILURES):
                    raise StoreUnavailable(
                        f"cannot migrate the PostgreSQL database: {type(exc).__name__}: {exc}"
                    ) from exc
                raise
            self._db.pool = pool
            self.schema_version_before, self.schema_version = before, after
            await self._sessions.start(wait=timedelta(seconds=self._connect_timeout))

    def _server_settings(self) -> dict[str, str]:
        return {} if self._schema is None else {"search_path": self._schema}

    async def _connect_listener(self) -> asyncpg.Connection[asyncpg.Record]:
        """A connection outside the pool, set up like the pool's (for ``LISTEN``)."""
        return await asyncpg.connect(
            self._dsn,
            timeout=self._connect_timeout,
            command_timeout=self._command_timeout,
            server_settings=self._server_settings(),
        )

    async def _create_pool(self) -> asyncpg.Pool[asyncpg.Record]:
        try:
            return await asyncpg.create_pool(
                self._dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
                server_settings=self._server_settings(),
            )
        except ValueError as exc:
            # The DSN itself is wrong (asyncpg raises ClientConfigurationError, a
            # ValueError, or a bare ValueError for a bad port); the message names the
            # part, never the password.
            raise ConfigurationError(f"invalid PostgreSQL URL: {exc}") from exc
        except FAILURES as exc:
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL: {type(exc).__name__}: {exc}"
            ) from exc

    async def ping(self) -> None:
        await self._users._one("SELECT 1")

    async def aclose(self) -> None:
        """Stop the session cache's listener, then close the pool: gracefully if the
        server answers, else by terminating."""
        await self._sessions.aclose()
        pool, self._db.pool = self._db.pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), timeout=self._close_timeout)
        except FAILURES:
            pool.terminate()  # close() terminated already on most errors; now surely
