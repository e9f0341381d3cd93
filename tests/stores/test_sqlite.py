"""SQLite specifics: file handling, migrations, durability, failing closed, many connections."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.stores.test_contract import session, user
from velvetrope.errors import ConfigurationError, StoreUnavailable
from velvetrope.stores import SchemaVersion, SQLiteStores, open_stores, sqlite_path
from velvetrope.stores.sqlite.schema import MIGRATIONS, migrate, statements


def test_open_creates_the_file_in_wal_mode_at_the_latest_schema(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "vr.db"
    stores = SQLiteStores(path)
    asyncio.run(stores.start())
    asyncio.run(stores.aclose())
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    conn.close()


def test_reopening_keeps_data_and_does_not_migrate_twice(tmp_path: Path) -> None:
    async def first() -> None:
        stores = SQLiteStores(tmp_path / "vr.db")
        await stores.start()
        await stores.users.add(user(1))
        await stores.sessions.add(session(user(1).id))
        await stores.aclose()

    async def second() -> tuple[int, int]:
        stores = SQLiteStores(tmp_path / "vr.db")
        assert await stores.migrate() == SchemaVersion(len(MIGRATIONS), len(MIGRATIONS))
        users = len(await stores.users.list())
        sessions = len(await stores.sessions.list_for_user(user(1).id))
        await stores.aclose()
        return users, sessions

    asyncio.run(first())
    assert asyncio.run(second()) == (1, 1)


def test_a_newer_schema_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "vr.db")
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(ConfigurationError, match="newer than this velvetrope"):
        asyncio.run(SQLiteStores(tmp_path / "vr.db").start())


def test_a_file_that_is_not_a_database_is_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "vr.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreUnavailable, match="cannot open SQLite database"):
        asyncio.run(SQLiteStores(tmp_path / "vr.db").start())


async def test_TERM_05_queries_on_a_broken_connection_fail_closed(tmp_path: Path) -> None:
    """A store that cannot answer raises StoreUnavailable, never "not found"."""
    stores = SQLiteStores(tmp_path / "vr.db")
    await stores.start()
    await stores.aclose()  # every query now fails: the connection is closed
    with pytest.raises(StoreUnavailable):
        await stores.sessions.get("0" * 64)
    with pytest.raises(StoreUnavailable):
        await stores.users.get_by_email("a@example.com")
    with pytest.raises(StoreUnavailable):
        await stores.ping()


def test_SESS_10_rotation_is_atomic_across_connections(tmp_path: Path) -> None:
    """Eight connections (as from eight processes) rotate one session at once: one wins."""
    path = tmp_path / "vr.db"
    old = session("u1", 0)

    async def seed() -> None:
        stores = SQLiteStores(path)
        await stores.start()
        await stores.sessions.add(old)
        await stores.aclose()

    asyncio.run(seed())
    barrier = threading.Barrier(8)
    results: list[bool] = []
    lock = threading.Lock()

    def contender(n: int) -> None:
        async def go() -> bool:
            stores = SQLiteStores(path)
            await stores.start()
            try:
                barrier.wait(timeout=10)
                return await stores.sessions.rotate(old.id_digest, session("u1", n))
            finally:
                await stores.aclose()

        won = asyncio.run(go())
        with lock:
            results.append(won)

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [False] * 7 + [True]


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///velvetrope.db", "velvetrope.db"),
        ("sqlite:////var/lib/vr.db", "/var/lib/vr.db"),
        ("./data/vr.db", "./data/vr.db"),
        ("memory://", None),
        ("postgresql://localhost/db", None),
    ],
)
def test_database_urls_name_the_right_file(url: str, path: str | None) -> None:
    assert sqlite_path(url) == path


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "   "])
def test_database_urls_without_a_file_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        sqlite_path(url)


def test_unsupported_scheme_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not supported"):
        open_stores("mysql://localhost/db")


@pytest.fixture
async def two_processes(tmp_path: Path) -> AsyncIterator[tuple[SQLiteStores, SQLiteStores]]:
    """Two started stores on one file, as two workers (or a worker and the CLI) hold it."""
    a = SQLiteStores(tmp_path / "vr.db")
    b = SQLiteStores(tmp_path / "vr.db")
    await a.start()
    await b.start()
    yield a, b
    await a.aclose()
    await b.aclose()


async def test_SESS_09_the_session_cache_never_outlives_a_delete_by_another_process(
    two_processes: tuple[SQLiteStores, SQLiteStores],
) -> None:
    """Worker A has the session cached; the CLI (B) ends it; A's very next read misses."""
    a, b = two_processes
    s = session("u1")
    await a.sessions.add(s)
    assert await a.sessions.get(s.id_digest) == s  # now cached in A
    assert await b.sessions.delete_for_user("u1") == 1
    assert await a.sessions.get(s.id_digest) is None
    await b.sessions.add(s)
    assert await a.sessions.get(s.id_digest) == s  # and sees B's writes too


class _Pragmas:
    """Counts the ``PRAGMA data_version`` queries a session store makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, stores: SQLiteStores) -> None:
        self.count = 0
        real = stores.sessions._one
        store = stores.sessions

        def one(sql: str, params: Any) -> Any:
            if sql.startswith("PRAGMA data_version"):
                self.count += 1
            return real(sql, params)

        monkeypatch.setattr(store, "_one", one)


async def test_OPS_W1_the_session_cache_asks_sqlite_only_when_a_process_wrote(
    two_processes: tuple[SQLiteStores, SQLiteStores], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache hit costs a read of the shared write epoch, not a pragma; every commit by
    any velvetrope process (another worker's touch, a device binding, the CLI's
    sign-out) moves the epoch, and the next read asks SQLite and sees it at once."""
    a, b = two_processes
    s = session("u1")
    await a.sessions.add(s)
    pragmas = _Pragmas(monkeypatch, a)
    assert await a.sessions.get(s.id_digest) == s
    for _ in range(50):
        assert await a.sessions.get(s.id_digest) == s
    assert pragmas.count <= 1  # at most the first, nothing written since
    later = s.last_seen_at + timedelta(minutes=5)
    assert await b.sessions.touch(s.id_digest, later)  # another worker's touch
    assert (await a.sessions.get(s.id_digest)).last_seen_at == later  # type: ignore[union-attr]
    assert await b.sessions.bind(s.id_digest, "device-key")
    assert (await a.sessions.get(s.id_digest)).device_key == "device-key"  # type: ignore[union-attr]
    assert await b.sessions.delete(s.id_digest)  # the CLI signs it out
    assert await a.sessions.get(s.id_digest) is None
    assert pragmas.count >= 4  # one per write by B, none in between


async def test_OPS_W1_a_write_outside_velvetrope_is_seen_within_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain SQL on the file moves no write epoch: the cache asks SQLite at least once
    per ``OUTSIDE_WRITES_WITHIN`` anyway, so an operator's ``DELETE`` counts within it."""
    from velvetrope.stores.sqlite import accounts  # noqa: PLC0415

    now = [1000.0]
    monkeypatch.setattr(accounts, "monotonic", lambda: now[0])
    a = SQLiteStores(tmp_path / "vr.db")
    await a.start()
    outside = sqlite3.connect(tmp_path / "vr.db", isolation_level=None)
    try:
        s = session("u1")
        await a.sessions.add(s)
        assert await a.sessions.get(s.id_digest) == s  # cached, epoch and sweep noted
        outside.execute("DELETE FROM sessions WHERE id_digest = ?", (s.id_digest,))
        now[0] += accounts.OUTSIDE_WRITES_WITHIN / 2
        assert await a.sessions.get(s.id_digest) == s  # not yet: within the bound
        now[0] += accounts.OUTSIDE_WRITES_WITHIN / 2
        assert await a.sessions.get(s.id_digest) is None  # the sweep saw it
    finally:
        outside.close()
        await a.aclose()


def test_a_process_that_waited_for_another_s_migration_finds_it_done(tmp_path: Path) -> None:
    """Two workers starting on a new database: the one that waited for the write lock
    must read the version again, not re-run what the other applied (a duplicate column
    stopped the second uvicorn worker, and with it the whole server)."""
    path = tmp_path / "vr.db"
    first = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    second = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    second.execute("PRAGMA busy_timeout = 10000")
    first.execute("BEGIN IMMEDIATE")  # the first worker is migrating
    outcome: list[object] = []
    waiting = threading.Thread(target=lambda: outcome.append(_migrated(second)))
    waiting.start()
    waiting.join(timeout=0.5)
    assert waiting.is_alive(), outcome  # the second waits for the first's write lock
    for version, script in enumerate(MIGRATIONS, start=1):
        for statement in statements(script):
            first.execute(statement)
        first.execute(f"PRAGMA user_version = {version}")
    first.execute("COMMIT")
    waiting.join(timeout=15)
    assert outcome == [len(MIGRATIONS)]
    assert sqlite_schema_version(path) == len(MIGRATIONS)
    first.close()
    second.close()


def _migrated(conn: sqlite3.Connection) -> object:
    try:
        return migrate(conn)
    except sqlite3.Error as exc:
        return exc


def sqlite_schema_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        return version
    finally:
        conn.close()


def test_migration_scripts_split_into_whole_statements() -> None:
    script = "CREATE TABLE a (x);\nCREATE TRIGGER t AFTER INSERT ON a BEGIN\n  SELECT 1;\nEND;\n"
    assert statements(script) == [
        "CREATE TABLE a (x);",
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  SELECT 1;\nEND;",
    ]
    with pytest.raises(ValueError, match="incomplete"):
        statements("CREATE TABLE b (x")
