"""``velvetrope migrate``: bring the database schema up to date and print its version."""

from __future__ import annotations

import asyncio

from velvetrope.bootstrap import open_configured_stores
from velvetrope.cli.common import DatabaseOption, clean_errors, fail, load_settings, out
from velvetrope.settings import Settings
from velvetrope.stores.records import SchemaVersion
from velvetrope.stores.registry import describe_database_url

__all__ = ["migrate"]


async def _migrate(settings: Settings) -> SchemaVersion | None:
    """Migrate the configured database; its version before and after, or ``None`` for a
    backend without a schema."""
    stores = open_configured_stores(settings.model_copy(update={"redis_url": None}))
    try:
        return await stores.migrate()
    finally:
        await stores.aclose()


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
    with clean_errors(settings):
        version = asyncio.run(_migrate(settings))
    where = describe_database_url(url)
    if version is None:
        fail(f"{where} has no schema to migrate")
    if version.before == version.after:
        out.print(f"{where}: schema version {version.after} (up to date)")
    else:
        out.print(
            f"{where}: schema version {version.after} (migrated from version {version.before})"
        )
