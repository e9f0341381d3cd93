"""PostgreSQL for the tests: the shared server, throwaway schemas, and private clusters.

The contract suite opens the server at ``VELVETROPE_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``); every store gets its own schema,
dropped when the store closes. Without a reachable server the PostgreSQL tests skip,
except under CI (``CI`` set), where they fail: CI must not pass by skipping.

Tests that run ``velvetrope serve`` processes give them a whole database of their own
(:func:`temp_database`: created, then dropped with every connection to it).

Outage and restart tests need a server they may stop: :class:`TempCluster` runs
``initdb`` and ``pg_ctl`` in a temporary directory, as the ``postgres`` user when the
tests run as root (``initdb`` refuses root).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.support.ports import free_port
from tests.support.require import missing
from velvetrope.errors import StoreUnavailable
from velvetrope.stores.postgres import PostgresStores
from velvetrope.stores.postgres._db import FAILURES
from velvetrope.stores.postgres.schema import MIGRATIONS

__all__ = [
    "ADMIN_URL",
    "DisposableStores",
    "TempCluster",
    "create_database",
    "database_url",
    "drop_database",
    "drop_schema",
    "new_database_name",
    "new_schema_name",
    "open_postgres",
    "postgres_dump",
    "postgres_rows",
    "require_postgres",
    "running_cluster",
    "temp_database",
]

ADMIN_URL = os.environ.get(
    "VELVETROPE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
SCHEMA_PREFIX = "vr_test_"
DATABASE_PREFIX = "vr_e2e_"
_STALE_AFTER = 6 * 3600  # seconds: schemas of killed test runs go after six hours


@cache
def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 1):
            return True
    except OSError:
        return False


def require_postgres() -> str:
    """Return the admin URL, or skip (fail under CI) if nothing listens there."""
    if not _reachable(ADMIN_URL):
        where = urlsplit(ADMIN_URL).netloc.rpartition("@")[2]  # never the password
        missing(f"PostgreSQL is not reachable at {where} (set VELVETROPE_TEST_POSTGRES_URL)")
    return ADMIN_URL


def new_schema_name() -> str:
    """A fresh schema name that records when it was made (for the stale sweep)."""
    return f"{SCHEMA_PREFIX}{int(time.time())}_{secrets.token_hex(6)}"


async def _execute(sql: str, admin_url: str = ADMIN_URL) -> None:
    """Run one statement on a connection of its own to ``admin_url``."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def drop_schema(name: str) -> None:
    """Drop schema ``name`` and everything in it, if it exists."""
    await _execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


async def _sweep_stale_schemas() -> None:
    """Drop test schemas left by runs that were killed before their teardown."""
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        names = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", SCHEMA_PREFIX
        )
        cutoff = time.time() - _STALE_AFTER
        for (name,) in names:
            made = name.removeprefix(SCHEMA_PREFIX).split("_", 1)[0]
            if made.isdigit() and int(made) < cutoff:
                await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    finally:
        await conn.close()


# Empties every table of the connection's schema but schema_migrations, and restarts
# its sequences: as fresh as a new schema, in ~2 ms instead of ~40 ms to create and
# migrate one (measured), which adds up over a contract suite run per test.
_RESET = """
DO $$
DECLARE name text;
BEGIN
    FOR name IN SELECT tablename FROM pg_tables
                WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'
    LOOP
        EXECUTE format('DELETE FROM %I', name);
    END LOOP;
    FOR name IN SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()
    LOOP
        EXECUTE format('ALTER SEQUENCE %I RESTART', name);
    END LOOP;
END $$
"""

_free_schemas: list[str] = []  # migrated, emptied, ready for the next DisposableStores


def _drop_free_schemas() -> None:
    async def drop_all() -> None:
        for name in _free_schemas:
            await drop_schema(name)

    if _free_schemas:
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            asyncio.run(drop_all())


atexit.register(_drop_free_schemas)


class DisposableStores(PostgresStores):
    """PostgreSQL stores (on ``ADMIN_URL``) in a schema of their own, emptied or dropped
    by ``aclose()``.

    A schema left at the current version is emptied and handed to the next instance
    (the process drops them all at exit); anything else is dropped at once.

    Attributes:
        reusable: Set to ``False`` to have ``aclose()`` drop the schema whatever state
            it is in (for tests that change its structure).
    """

    _swept = False

    def __init__(self, **options: Any) -> None:
        schema = _free_schemas.pop() if _free_schemas else new_schema_name()
        super().__init__(ADMIN_URL, schema=schema, **options)
        self.reusable = True

    async def start(self) -> None:
        if not DisposableStores._swept:
            DisposableStores._swept = True
            await _sweep_stale_schemas()
        await super().start()

    async def aclose(self) -> None:
        assert self.schema is not None
        emptied = False
        if self.reusable and self._version is not None and self._version.after == len(MIGRATIONS):
            try:
                async with self._db.acquire() as conn:
                    await conn.execute(_RESET)
                emptied = True
            except StoreUnavailable:
                emptied = False  # already closed
            except FAILURES:
                emptied = False  # the server went away: drop it (if it is back)
        await super().aclose()
        if emptied:
            _free_schemas.append(self.schema)
        else:
            await drop_schema(self.schema)


def open_postgres(tmp_path: Path) -> PostgresStores:
    """A fresh, empty PostgreSQL backend (call ``await stores.start()`` next).

    ``tmp_path`` is unused (the schema is the unit of isolation); the signature
    matches the other backends' openers in ``tests.support.stores.open_backend``.
    """
    require_postgres()
    return DisposableStores()


async def postgres_dump(stores: PostgresStores) -> bytes:
    """Every row of every table in the stores' schema, as text (for SESS-03)."""
    assert stores.schema is not None
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename",
            stores.schema,
        )
        lines = []
        for (table,) in tables:
            rows = await conn.fetch(f"SELECT t::text FROM {stores.schema}.{table} t")  # noqa: S608
            lines += [f"{table}: {row[0]}" for row in rows]
    finally:
        await conn.close()
    return "\n".join(lines).encode()


def postgres_rows(stores: PostgresStores, table: str) -> int:
    """How many rows ``table`` of the stores' schema holds, asked on a connection of its
    own; synchronous (a worker thread runs the query) for callers that cannot await."""
    assert stores.schema is not None
    assert table.isidentifier(), table

    async def count() -> int:
        conn = await asyncpg.connect(ADMIN_URL)
        try:
            await conn.execute(f"SET search_path = {stores.schema}")
            return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(asyncio.run, count()).result(timeout=30)


# --- whole databases (for velvetrope processes) ----------------------------------------


def new_database_name() -> str:
    """A fresh database name that records when it was made (for the stale sweep)."""
    return f"{DATABASE_PREFIX}{int(time.time())}_{secrets.token_hex(6)}"


def database_url(name: str, admin_url: str = ADMIN_URL) -> str:
    """``admin_url`` with its database replaced by ``name`` (same server, user, options)."""
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


async def create_database(name: str, admin_url: str = ADMIN_URL) -> str:
    """Create the empty database ``name`` on ``admin_url``'s server; return its URL."""
    assert name.isidentifier(), name
    await _execute(f"CREATE DATABASE {name}", admin_url)
    return database_url(name, admin_url)


async def drop_database(name: str, admin_url: str = ADMIN_URL) -> None:
    """Drop database ``name`` if it exists, ending any connection still open to it."""
    assert name.isidentifier(), name
    await _execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", admin_url)


async def _sweep_stale_databases(admin_url: str) -> None:
    """Drop test databases left by runs that were killed before their teardown."""
    conn = await asyncpg.connect(admin_url)
    try:
        names = await conn.fetch(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", DATABASE_PREFIX
        )
    finally:
        await conn.close()
    cutoff = time.time() - _STALE_AFTER
    for (name,) in names:
        made = name.removeprefix(DATABASE_PREFIX).split("_", 1)[0]
        if made.isdigit() and int(made) < cutoff:
            await drop_database(name, admin_url)


_swept_servers: set[str] = set()


@contextlib.contextmanager
def temp_database(admin_url: str = ADMIN_URL) -> Iterator[str]:
    """A new empty database on ``admin_url``'s server, as a URL; dropped on exit.

    Synchronous (for plain fixtures): call it where no event loop runs. The drop ends
    the connections of any process still using the database.
    """
    if admin_url not in _swept_servers:
        _swept_servers.add(admin_url)
        asyncio.run(_sweep_stale_databases(admin_url))
    name = new_database_name()
    url = asyncio.run(create_database(name, admin_url))
    try:
        yield url
    finally:
        asyncio.run(drop_database(name, admin_url))


# --- a private cluster ------------------------------------------------------------------


@cache
def _bin_dir() -> Path | None:
    """The directory with ``initdb`` and ``pg_ctl`` (PATH first, then Debian's layout)."""
    found = shutil.which("initdb")
    if found is not None and shutil.which("pg_ctl") is not None:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


class TempCluster:
    """A PostgreSQL server of its own in a temporary directory, to stop and start at will.

    Attributes:
        port: The TCP port on 127.0.0.1.
        url: An admin URL for its ``postgres`` database.
    """

    def __init__(self) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            missing("initdb/pg_ctl not found (PATH or /usr/lib/postgresql/*/bin)")
        self._pg_ctl = str(bin_dir / "pg_ctl")
        self._as_owner: list[str] = []
        self._dir = Path(tempfile.mkdtemp(prefix="vr-pg-"))
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                owner = None
            if runuser is None or owner is None:
                shutil.rmtree(self._dir)
                missing("running as root without runuser or a postgres user for initdb")
            os.chown(self._dir, owner.pw_uid, owner.pw_gid)
            self._as_owner = [runuser, "-u", "postgres", "--"]
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._data = self._dir / "data"
        self._run(
            str(bin_dir / "initdb"),
            "-D",
            str(self._data),
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--no-sync",
            "--no-instructions",
        )

    def _run(self, *argv: str, check: bool = True) -> int:
        done = subprocess.run(
            [*self._as_owner, *argv], capture_output=True, text=True, timeout=60, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed:\n{done.stdout}\n{done.stderr}")
        return done.returncode

    def is_running(self) -> bool:
        """Whether the server runs (``pg_ctl status``)."""
        return self._run(self._pg_ctl, "status", "-D", str(self._data), check=False) == 0

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self._dir}"
        self._run(
            self._pg_ctl,
            "start",
            "-D",
            str(self._data),
            "-l",
            str(self._dir / "log"),
            "-w",
            "-t",
            "30",
            "-o",
            options,
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clean) or ``immediate`` (as a crash; WAL replays)."""
        self._run(self._pg_ctl, "stop", "-D", str(self._data), "-m", mode, "-w", "-t", "30")

    def restart(self, mode: str = "fast") -> None:
        """Stop the server (see :meth:`stop` for ``mode``) and start it again on the same port."""
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        """Stop the server if it runs and delete its directory."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self._dir, ignore_errors=True)


@contextlib.contextmanager
def running_cluster() -> Iterator[TempCluster]:
    """A :class:`TempCluster`, started; stopped and deleted on exit (for module fixtures)."""
    server = TempCluster()
    try:
        server.start()
        yield server
    finally:
        server.destroy()
