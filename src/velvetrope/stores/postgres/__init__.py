"""PostgreSQL stores: every node of a deployment shares one database.

``PostgresStores(dsn)`` (or ``from_url``) opens nothing until ``start()``, which
creates an asyncpg pool (bounded connect, acquire and command timeouts) and applies
the migrations in :mod:`velvetrope.stores.postgres.schema` under an advisory lock, so
several nodes
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
from datetime import timedelta
from typing import TYPE_CHECKING

import asyncpg

from velvetrope.errors import ConfigurationError, StoreUnavailable
from velvetrope.stores.cached_sessions import DEFAULT_TTL, CachedSessionStore
from velvetrope.stores.postgres._db import FAILURES, Database
from velvetrope.stores.postgres._logs import quiet_pool_outages
from velvetrope.stores.postgres.accounts import (
    PostgresSessionStore,
    PostgresThrottleStore,
    PostgresUserStore,
)
from velvetrope.stores.postgres.notifier import PostgresNotifier, channel_name
from velvetrope.stores.postgres.schema import check_schema_name, lock_key, migrate
from velvetrope.stores.postgres.security_log import PostgresSecurityLogStore
from velvetrope.stores.postgres.tokens import (
    PostgresKeyStore,
    PostgresOneTimeStore,
    PostgresRefreshStore,
    PostgresRevocationStore,
)
from velvetrope.stores.records import SchemaVersion, SessionCacheStatus

if TYPE_CHECKING:
    from velvetrope.stores.registry import StoreOptions

__all__ = ["PostgresStores"]


class PostgresStores:
    """Every store in one PostgreSQL database (or one schema of it), over one pool.

    Args:
        dsn: ``postgresql://user:password@host:port/database`` (``postgres://`` too,
            and any libpq-style parameters asyncpg understands, such as ``sslmode``).
        min_size: Connections the pool keeps open (and restores after an outage).
        max_size: Most connections the pool opens.
        schema: Keep the tables in this schema (created if missing), not in the first
            schema of the search path.
        connect_timeout: How long to establish one connection.
        acquire_timeout: How long a query waits for a pooled connection (including
            connecting it) before failing closed.
        command_timeout: How long one statement may run before failing closed.
        close_timeout: How long ``aclose()`` waits for a graceful close before it
            terminates the connections.
        session_cache_ttl: The staleness bound of this node's session near-cache
            (see :mod:`velvetrope.stores.cached_sessions`); zero turns it off.

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
        connect_timeout: timedelta = timedelta(seconds=5),
        acquire_timeout: timedelta = timedelta(seconds=5),
        command_timeout: timedelta = timedelta(seconds=10),
        close_timeout: timedelta = timedelta(seconds=5),
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
        self._connect_timeout = connect_timeout.total_seconds()
        self._command_timeout = command_timeout.total_seconds()
        self._close_timeout = close_timeout.total_seconds()
        self._start_lock = asyncio.Lock()
        self._db = Database(acquire_timeout=acquire_timeout.total_seconds())
        self._users = PostgresUserStore(self._db)
        self._throttle = PostgresThrottleStore(self._db)
        self._keys = PostgresKeyStore(self._db)
        self._refresh = PostgresRefreshStore(self._db)
        self._one_time = PostgresOneTimeStore(self._db)
        self._security_log = PostgresSecurityLogStore(self._db)
        self._revocations = PostgresRevocationStore(
            self._db, append_lock=lock_key("revocations", self._schema)
        )
        self._notifier = PostgresNotifier(
            self._db, self._connect_listener, channel=channel_name(self._schema)
        )
        self._sessions = CachedSessionStore(
            PostgresSessionStore(self._db), self._notifier, ttl=session_cache_ttl
        )
        self._version: SchemaVersion | None = None

    @classmethod
    def from_url(cls, url: str, options: StoreOptions) -> PostgresStores:
        """``postgresql://user:password@host:port/database`` (``postgres://`` too)."""
        return cls(url, session_cache_ttl=options.session_cache_ttl)

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
    def security_log(self) -> PostgresSecurityLogStore:
        return self._security_log

    @property
    def one_time(self) -> PostgresOneTimeStore:
        return self._one_time

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
            quiet_pool_outages()
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
            self._version = SchemaVersion(before, after)
            await self._sessions.start(wait=timedelta(seconds=self._connect_timeout))

    async def migrate(self) -> SchemaVersion:
        """Start (which migrates); the schema version before and after."""
        await self.start()
        assert self._version is not None  # noqa: S101 - set by start()
        return self._version

    def session_cache_status(self) -> SessionCacheStatus:
        return self._sessions.status()

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
            async with asyncio.timeout(self._close_timeout):
                await pool.close()
        except FAILURES:
            pool.terminate()  # close() terminated already on most errors; now surely
