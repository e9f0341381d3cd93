"""SQLite stores: the embedded default. One file, WAL mode, no server to run.

Queries run on the event loop thread: an indexed point lookup costs microseconds,
less than a hop to a worker thread would (docs/architecture.md, "The hot path").
Durability: WAL with ``synchronous=NORMAL`` survives a crash or restart of the
process; a power cut may lose the last commits. Set ``synchronous="full"`` to
fsync every commit.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from velvetrope.errors import ConfigurationError, StoreUnavailable
from velvetrope.stores.records import SchemaVersion
from velvetrope.stores.sqlite._db import Database
from velvetrope.stores.sqlite.accounts import (
    SQLiteSessionStore,
    SQLiteThrottleStore,
    SQLiteUserStore,
)
from velvetrope.stores.sqlite.epoch import EPOCH_SUFFIX, WRITES_SUFFIX, RevocationEpoch
from velvetrope.stores.sqlite.schema import migrate, schema_version
from velvetrope.stores.sqlite.security_log import SQLiteSecurityLogStore
from velvetrope.stores.sqlite.tokens import (
    SQLiteKeyStore,
    SQLiteOneTimeStore,
    SQLiteRefreshStore,
    SQLiteRevocationStore,
)

if TYPE_CHECKING:
    from velvetrope.stores.registry import StoreOptions

__all__ = ["SQLiteStores"]

Synchronous = Literal["normal", "full"]


class SQLiteStores:
    """Every store in one SQLite database file, opened by :meth:`start`.

    Args:
        path: The database file (created, with its folder, owner-only, if missing).
        synchronous: ``normal`` (WAL's default) or ``full`` (fsync every commit).
    """

    def __init__(self, path: str | Path, *, synchronous: Synchronous = "normal") -> None:
        self.path = str(path)
        self._synchronous = synchronous
        self._db = Database()
        self._users = SQLiteUserStore(self._db)
        self._sessions = SQLiteSessionStore(self._db)
        self._throttle = SQLiteThrottleStore(self._db)
        self._keys = SQLiteKeyStore(self._db)
        self._refresh = SQLiteRefreshStore(self._db)
        self._revocations = SQLiteRevocationStore(self._db)
        self._one_time = SQLiteOneTimeStore(self._db)
        self._security_log = SQLiteSecurityLogStore(self._db)
        self._version: SchemaVersion | None = None

    @classmethod
    def from_url(cls, url: str, options: StoreOptions) -> SQLiteStores:
        """``sqlite:///relative.db``, ``sqlite:////absolute.db`` or a plain path.

        Raises:
            ConfigurationError: The URL names no file.
        """
        from velvetrope.stores.registry import sqlite_path  # noqa: PLC0415 - no cycle at import

        path = sqlite_path(url)
        if path is None:
            raise ConfigurationError(f"not a SQLite URL: {url.split('://', 1)[0]}://")
        return cls(path, synchronous=options.sqlite_synchronous)

    async def start(self) -> None:
        """Open (creating if needed) the database and migrate it; a no-op once open.

        Raises:
            StoreUnavailable: The file cannot be opened or is not a database.
            ConfigurationError: Its schema is newer than this velvetrope.
        """
        if self._db.connection is not None:
            return
        conn, self._version = _open(self.path, self._synchronous)
        self._sessions.forget()  # another process may have written while it was closed
        if self.path != ":memory:":  # one connection, one process: nothing to share
            try:
                self._revocations.use_epoch(RevocationEpoch(self.path + EPOCH_SUFFIX))
                self._db.writes = RevocationEpoch(self.path + WRITES_SUFFIX)
            except StoreUnavailable:
                conn.close()
                await self.aclose()  # unmaps whichever epoch was mapped
                raise
        self._db.connection = conn

    async def migrate(self) -> SchemaVersion:
        """Open and migrate (as :meth:`start`); the schema version before and after."""
        await self.start()
        assert self._version is not None  # noqa: S101 - set by start()
        return self._version

    def session_cache_status(self) -> None:
        return None  # lookups are local (the store's own cache is never stale)

    @property
    def users(self) -> SQLiteUserStore:
        return self._users

    @property
    def sessions(self) -> SQLiteSessionStore:
        return self._sessions

    @property
    def throttle(self) -> SQLiteThrottleStore:
        return self._throttle

    @property
    def keys(self) -> SQLiteKeyStore:
        return self._keys

    @property
    def refresh(self) -> SQLiteRefreshStore:
        return self._refresh

    @property
    def revocations(self) -> SQLiteRevocationStore:
        return self._revocations

    @property
    def security_log(self) -> SQLiteSecurityLogStore:
        return self._security_log

    @property
    def one_time(self) -> SQLiteOneTimeStore:
        return self._one_time

    @property
    def notifier(self) -> None:
        return None  # one process: nothing to push to

    async def ping(self) -> None:
        self._users._one("SELECT 1", ())

    async def aclose(self) -> None:
        """Close the connection (started again, the stores reopen the file)."""
        conn, self._db.connection = self._db.connection, None
        if conn is not None:
            conn.close()
        epoch = self._revocations.epoch
        self._revocations.use_epoch(None)
        if epoch is not None:
            epoch.close()
        writes, self._db.writes = self._db.writes, None
        if writes is not None:
            writes.close()


def _open(path: str, synchronous: Synchronous) -> tuple[sqlite3.Connection, SchemaVersion]:
    """Open and migrate the database at ``path`` (microseconds of blocking I/O, once)."""
    try:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # The database holds password hashes and private signing keys: owner only.
            Path(path).touch(mode=0o600, exist_ok=True)
        # One connection, used from one event loop at a time; the loop may run in a
        # thread other than the one that opened it (TestClient, anyio portals).
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except (sqlite3.Error, OSError) as exc:
        raise StoreUnavailable(f"cannot open SQLite database {path!r}: {exc}") from exc
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {'FULL' if synchronous == 'full' else 'NORMAL'}")
        before = schema_version(conn)
        version = SchemaVersion(before, migrate(conn))
    except BaseException as exc:
        conn.close()
        if isinstance(exc, sqlite3.Error):
            raise StoreUnavailable(f"cannot open SQLite database {path!r}: {exc}") from exc
        raise
    return conn, version
