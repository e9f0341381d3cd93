"""``velvetrope migrate``: bring the database schema up to date and print its version."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from velvetrope.cli.common import DatabaseOption, clean_errors, fail, load_settings, out
from velvetrope.settings import Settings
from velvetrope.stores import describe_database_url, open_stores, sqlite_path
from velvetrope.stores.postgres import PostgresStores
from velvetrope.stores.sqlite.schema import MIGRATIONS as SQLITE_MIGRATIONS

__all__ = ["migrate"]


def _sqlite_version(path: str) -> int:
    """The schema version of the SQLite file at ``path`` (0 if there is none yet)."""
    if not Path(path).is_file():
        return 0
    try:
        conn = sqlite3.connect(f"file:{Path(path).resolve().as_posix()}?mode=ro", uri=True)
        try:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0  # not a database: opening it below reports that properly


async def _migrate(settings: Settings) -> tuple[int, int] | None:
    """Open the configured stores (which migrates them); return the version before and
    after, or ``None`` for a backend without a schema."""
    url = settings.database_url
    path = sqlite_path(url)
    before = _sqlite_version(path) if path is not None else 0
    # SQLite migrates as it opens, PostgreSQL as it starts.
    stores = open_stores(url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        await stores.start()
    finally:
        await stores.aclose()
    if isinstance(stores, PostgresStores):
        assert stores.schema_version_before is not None  # noqa: S101 - set by start()
        assert stores.schema_version is not None  # noqa: S101 - set by start()
        return stores.schema_version_before, stores.schema_version
    if path is not None:
        return before, len(SQLITE_MIGRATIONS)
    return None


def migrate(database: str = DatabaseOption) -> None:
    """Apply pending schema migrations to the database and print its schema version.

    Servers migrate when they start, too (one at a time, however many start at once);
    run this in a deploy step to migrate before new servers start, or to check the
    version. Safe to repeat: an up-to-date database is left as it is.
    """
    settings = load_settings(database_url=database)
    url = settings.database_url
    if url == "memory://":
        fail("memory:// has no schema to migrate; point --database at a real store")
    with clean_errors():
        versions = asyncio.run(_migrate(settings))
    where = describe_database_url(url)
    if versions is None:
        fail(f"{where} has no schema to migrate")
    before, after = versions
    if before == after:
        out.print(f"{where}: schema version {after} (up to date)")
    else:
        out.print(f"{where}: schema version {after} (migrated from version {before})")
