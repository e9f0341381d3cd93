"""Store contracts and the backends that implement them, chosen by URL.

==============================  ===========================================
``VELVETROPE_DATABASE_URL``     backend
==============================  ===========================================
``sqlite:///velvetrope.db``     SQLite file ``./velvetrope.db`` (relative)
``sqlite:////var/lib/vr.db``    SQLite file ``/var/lib/vr.db`` (absolute)
``./velvetrope.db``             a plain path means SQLite too
``memory://``                   in-process; lost on restart
``postgresql://u:p@host/db``    PostgreSQL (``postgres://`` too)
==============================  ===========================================
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from velvetrope.errors import ConfigurationError
from velvetrope.stores.cached_sessions import (
    DEFAULT_TTL,
    CachedSessionStore,
    SessionCacheStatus,
)
from velvetrope.stores.composite import CompositeStores
from velvetrope.stores.memory import MemoryStores
from velvetrope.stores.postgres import PostgresStores
from velvetrope.stores.protocols import SessionStore, Stores, ThrottleStore, UserStore
from velvetrope.stores.records import FailureRecord, SessionRecord, UserRecord
from velvetrope.stores.redis import RedisStores
from velvetrope.stores.sqlite import SQLiteStores

__all__ = [
    "CachedSessionStore",
    "FailureRecord",
    "MemoryStores",
    "PostgresStores",
    "SQLiteStores",
    "SessionCacheStatus",
    "SessionRecord",
    "SessionStore",
    "Stores",
    "ThrottleStore",
    "UserRecord",
    "UserStore",
    "check_database_url",
    "describe_database_url",
    "is_postgres_url",
    "open_stores",
    "sqlite_path",
]


def is_postgres_url(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return url.startswith(("postgresql://", "postgres://"))


def sqlite_path(url: str) -> str | None:
    """Return the SQLite file path ``url`` names, or ``None`` if it is not SQLite.

    Raises:
        ConfigurationError: The URL is SQLite-shaped but names no file.
    """
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        if not path.startswith("/") or path == "/":
            raise ConfigurationError(
                f"database URL {url!r} names no file; write sqlite:///relative.db "
                "or sqlite:////absolute/path.db"
            )
        return path[1:]
    if "://" in url:
        return None
    if not url.strip():
        raise ConfigurationError("the database URL is empty")
    return url


def describe_database_url(url: str) -> str:
    """Return a short description of the backend a URL selects, for logs and the CLI."""
    if url == "memory://":
        return "memory (nothing is kept after the process ends)"
    if is_postgres_url(url):
        parts = urlsplit(url)  # host, port and database only: never the user or password
        return f"PostgreSQL at {parts.netloc.rpartition('@')[2] or 'localhost'}{parts.path}"
    path = sqlite_path(url)
    if path is not None:
        return f"SQLite at {path}"
    return url.split("://", 1)[0]


def check_database_url(url: str) -> None:
    """Check that a backend handles ``url``, without opening anything.

    Raises:
        ConfigurationError: The URL names no file, or its scheme is not supported.
    """
    if url == "memory://" or is_postgres_url(url) or sqlite_path(url) is not None:
        return
    scheme = url.split("://", 1)[0]
    raise ConfigurationError(
        f"database URL scheme {scheme!r} is not supported; use sqlite:///PATH, "
        "postgresql://USER:PASSWORD@HOST/DATABASE or memory://"
    )


def open_stores(
    url: str,
    *,
    sqlite_synchronous: Literal["normal", "full"] = "normal",
    redis_url: str | None = None,
    redis_prefix: str = "velvetrope:",
    session_cache_ttl: timedelta = DEFAULT_TTL,
) -> Stores:
    """Open the backend ``url`` selects (and Redis, if given) and return the stores.

    With ``redis_url``, sessions, refresh families, the revocation feed and login
    counters live in Redis; users and signing keys stay in ``url``'s database.
    Network backends connect in ``await stores.start()``. Sessions in Redis or
    PostgreSQL get a per-node near-cache whose entries live at most
    ``session_cache_ttl`` (:mod:`velvetrope.stores.cached_sessions`).

    Raises:
        ConfigurationError: The URL's scheme is not supported.
        StoreUnavailable: The backend cannot be opened.
    """
    if redis_url is None:
        return _open_primary(
            url, sqlite_synchronous=sqlite_synchronous, session_cache_ttl=session_cache_ttl
        )
    # The primary's sessions go unused next to Redis: no cache (nor its listener) there.
    primary = _open_primary(
        url, sqlite_synchronous=sqlite_synchronous, session_cache_ttl=timedelta(0)
    )
    fast = RedisStores(redis_url, prefix=redis_prefix, session_cache_ttl=session_cache_ttl)
    return CompositeStores(primary, fast)


def _open_primary(
    url: str, *, sqlite_synchronous: Literal["normal", "full"], session_cache_ttl: timedelta
) -> Stores:
    if url == "memory://":
        return MemoryStores()
    if is_postgres_url(url):  # connects and migrates in start()
        return PostgresStores(url, session_cache_ttl=session_cache_ttl)
    check_database_url(url)
    path = sqlite_path(url)
    assert path is not None  # noqa: S101 - check_database_url let only SQLite through
    return SQLiteStores.open(path, synchronous=sqlite_synchronous)
