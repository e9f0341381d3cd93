"""Shared plumbing for the SQLite stores: timestamps and failing closed."""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from velvetrope.errors import StoreUnavailable

if TYPE_CHECKING:
    from velvetrope.stores.sqlite.epoch import RevocationEpoch

__all__ = ["Database", "SQLiteTable", "dt", "guard", "ts"]


def ts(instant: datetime) -> float:
    return instant.timestamp()


def dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Turn driver failures into StoreUnavailable: fail closed, no trace to the user."""
    try:
        yield
    except sqlite3.IntegrityError:
        raise
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"SQLite error: {type(exc).__name__}") from exc


class Database:
    """The one connection every table of a ``SQLiteStores`` shares, once it is open.

    Attributes:
        connection: The connection, ``None`` until the stores start.
        writes: The shared write epoch of the database file (``<file>-writes``), or
            ``None`` (an in-memory database: nobody else can write). Every commit by any
            velvetrope process moves it (:meth:`wrote`), so a reader that sees it where
            it was knows no other velvetrope connection has committed since (see
            ``SQLiteSessionStore``).
    """

    __slots__ = ("connection", "writes")

    def __init__(self) -> None:
        self.connection: sqlite3.Connection | None = None
        self.writes: RevocationEpoch | None = None

    def wrote(self) -> None:
        """Announce a commit on this connection: move the write epoch to a new value.

        A random 63-bit value, as no lock is needed: whatever a reader saw last, the
        file now almost surely holds another number (a collision would need 2**-63 luck
        and costs at most one second, the sweep of ``SQLiteSessionStore``).
        """
        if self.writes is not None:
            self.writes.publish(secrets.randbits(63))


class SQLiteTable:
    """A store over the shared connection; every query fails closed."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def _conn(self) -> sqlite3.Connection:
        conn = self._db.connection
        if conn is None:
            raise StoreUnavailable("the SQLite database is not open (start the stores first)")
        return conn

    def _one(self, sql: str, params: Sequence[Any]) -> Any:
        # The per-request read: a plain try (no context manager) keeps it cheap.
        try:
            return self._conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite error: {type(exc).__name__}") from exc

    def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite error: {type(exc).__name__}") from exc

    def _write(self, sql: str, params: Sequence[Any]) -> int:
        try:
            changed = int(self._conn.execute(sql, params).rowcount)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite error: {type(exc).__name__}") from exc
        self._db.wrote()  # committed (autocommit): tell the other processes
        return changed

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: one writer at a time across processes."""
        with guard():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        self._db.wrote()
