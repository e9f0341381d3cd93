"""Every store backend by name, opened fresh and empty for one test."""

from __future__ import annotations

from pathlib import Path

from tests.support.postgres import open_postgres
from tests.support.redis import open_redis
from velvetrope.stores import MemoryStores, SQLiteStores, Stores

__all__ = ["BACKENDS", "open_backend"]

BACKENDS = ["memory", "sqlite", "redis", "postgres"]


def open_backend(name: str, tmp_path: Path) -> Stores:
    """Open a fresh, empty backend of kind ``name`` (call ``await stores.start()`` next).

    Redis and PostgreSQL skip the test without a server, and fail it under CI.
    """
    if name == "memory":
        return MemoryStores()
    if name == "sqlite":
        return SQLiteStores(tmp_path / "velvetrope.db")
    if name == "redis":
        return open_redis(tmp_path)
    if name == "postgres":
        return open_postgres(tmp_path)
    raise ValueError(name)
