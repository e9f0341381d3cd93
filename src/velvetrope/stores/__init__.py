"""Store contracts, and the backends that implement them, chosen by URL.

The contracts (:mod:`~velvetrope.stores.protocols`) and values
(:mod:`~velvetrope.stores.records`) are light; each backend is imported only when a
URL names it (:mod:`~velvetrope.stores.registry`), so using SQLite never loads the
PostgreSQL or Redis drivers. ``from velvetrope.stores import PostgresStores`` still
works: the backend classes are resolved on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from velvetrope.stores.cached_sessions import CachedSessionStore
from velvetrope.stores.composite import CompositeStores
from velvetrope.stores.protocols import SessionStore, Stores, ThrottleStore, UserStore
from velvetrope.stores.records import (
    FailureRecord,
    SchemaVersion,
    SessionCacheStatus,
    SessionRecord,
    UserRecord,
)
from velvetrope.stores.registry import (
    StoreOptions,
    check_database_url,
    describe_database_url,
    open_stores,
    sqlite_path,
)

if TYPE_CHECKING:
    from velvetrope.stores.memory import MemoryStores
    from velvetrope.stores.postgres import PostgresStores
    from velvetrope.stores.redis import RedisStores
    from velvetrope.stores.sqlite import SQLiteStores

__all__ = [
    "CachedSessionStore",
    "CompositeStores",
    "FailureRecord",
    "MemoryStores",
    "PostgresStores",
    "RedisStores",
    "SQLiteStores",
    "SchemaVersion",
    "SessionCacheStatus",
    "SessionRecord",
    "SessionStore",
    "StoreOptions",
    "Stores",
    "ThrottleStore",
    "UserRecord",
    "UserStore",
    "check_database_url",
    "describe_database_url",
    "open_stores",
    "sqlite_path",
]

_BACKENDS = {
    "MemoryStores": "velvetrope.stores.memory",
    "PostgresStores": "velvetrope.stores.postgres",
    "RedisStores": "velvetrope.stores.redis",
    "SQLiteStores": "velvetrope.stores.sqlite",
}


def __getattr__(name: str) -> Any:
    """Import a backend class the first time it is asked for."""
    module = _BACKENDS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
