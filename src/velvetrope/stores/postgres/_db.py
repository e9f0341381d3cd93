"""Shared plumbing for the PostgreSQL stores: the pool, row counts and failing closed.

Every query acquires a pooled connection with a timeout and runs under the pool's
``command_timeout``. Any driver or server failure other than a constraint violation
becomes :class:`~velvetrope.errors.StoreUnavailable` (fail closed, TERM-05). A lost
connection needs no restart: the pool reconnects on the next acquire once the server
answers again.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolAcquireContext, PoolConnectionProxy

from velvetrope.errors import StoreUnavailable

__all__ = [
    "FAILURES",
    "Connection",
    "Database",
    "PostgresTable",
    "count",
    "maybe_utc",
    "unavailable",
    "utc",
]

Connection: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"

# What "the database did not answer" looks like: refused or reset sockets (OSError),
# timeouts (connect, acquire, command), client-side errors on a dead connection
# (InterfaceError, including ConnectionDoesNotExistError's client twin), protocol
# errors, and server errors (shutdown, too many connections, read-only replica, ...).
# Constraint violations (IntegrityConstraintViolationError) are answers, not outages:
# callers catch them before this tuple.
FAILURES: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)


def unavailable(exc: BaseException) -> StoreUnavailable:
    """The fail-closed error for driver failure ``exc``; the class name only, no values."""
    sqlstate = getattr(exc, "sqlstate", None)
    code = f" (SQLSTATE {sqlstate})" if isinstance(sqlstate, str) else ""
    return StoreUnavailable(f"PostgreSQL error: {type(exc).__name__}{code}")


def count(status: str) -> int:
    """The row count of a command status such as ``UPDATE 1`` or ``INSERT 0 1``."""
    return int(status.rpartition(" ")[2])


def utc(instant: datetime) -> datetime:
    """``instant`` in UTC (asyncpg already decodes ``timestamptz`` as UTC; this pins it)."""
    return instant if instant.tzinfo is UTC else instant.astimezone(UTC)


def maybe_utc(instant: datetime | None) -> datetime | None:
    """:func:`utc` for nullable columns."""
    return None if instant is None else utc(instant)


class Database:
    """The connection pool every store of one :class:`PostgresStores` shares.

    ``pool`` is ``None`` until ``start()`` creates it and again after ``aclose()``.

    Attributes:
        pool: The asyncpg pool, or ``None`` when not started.
        acquire_timeout: Seconds to wait for a free (or new) connection.
    """

    def __init__(self, *, acquire_timeout: float) -> None:
        self.pool: asyncpg.Pool[asyncpg.Record] | None = None
        self.acquire_timeout = acquire_timeout

    def acquire(self) -> PoolAcquireContext[asyncpg.Record]:
        """A pooled connection, as ``async with db.acquire() as conn``.

        Raises:
            StoreUnavailable: The stores are not started (or already closed).
        """
        pool = self.pool
        if pool is None:
            raise StoreUnavailable("the PostgreSQL stores are not started (or already closed)")
        return pool.acquire(timeout=self.acquire_timeout)


class PostgresTable:
    """A store over the shared pool; every query fails closed."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _one(self, sql: str, *args: Any) -> asyncpg.Record | None:
        # The per-request read: a plain try (no extra context manager) keeps it cheap.
        try:
            async with self._db.acquire() as conn:
                return await conn.fetchrow(sql, *args)
        except asyncpg.IntegrityConstraintViolationError:
            raise
        except FAILURES as exc:
            raise unavailable(exc) from exc

    async def _all(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            async with self._db.acquire() as conn:
                return await conn.fetch(sql, *args)
        except asyncpg.IntegrityConstraintViolationError:
            raise
        except FAILURES as exc:
            raise unavailable(exc) from exc

    async def _write(self, sql: str, *args: Any) -> int:
        """Run one command; return how many rows it affected."""
        try:
            async with self._db.acquire() as conn:
                return count(await conn.execute(sql, *args))
        except asyncpg.IntegrityConstraintViolationError:
            raise
        except FAILURES as exc:
            raise unavailable(exc) from exc

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        """A connection in a ``READ COMMITTED`` transaction: commit on exit, roll back on error."""
        try:
            async with self._db.acquire() as conn, conn.transaction():
                yield conn
        except asyncpg.IntegrityConstraintViolationError:
            raise
        except FAILURES as exc:
            raise unavailable(exc) from exc
