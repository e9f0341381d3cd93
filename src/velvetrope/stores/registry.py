"""Which backend a URL names, found by its scheme and imported only when opened.

==============================  ==========================================
URL                             backend
==============================  ==========================================
``sqlite:///velvetrope.db``     SQLite file ``./velvetrope.db`` (relative)
``sqlite:////var/lib/vr.db``    SQLite file ``/var/lib/vr.db`` (absolute)
``./velvetrope.db``             a plain path means SQLite too
``memory://``                   in-process; lost on restart
``postgresql://u:p@host/db``    PostgreSQL (``postgres://`` too)
``redis://host:6379/0``         Redis, for the fast-moving state only
                                (``rediss://`` with TLS, ``unix:///path``)
``redis+cluster://h:p,h:p``     a Redis Cluster, for the same state
==============================  ==========================================

Adding a backend is one package with a ``Stores`` facade (its ``from_url``), one line
in :data:`PRIMARY` (or :data:`FAST`), and the contract suite run against it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from velvetrope.errors import ConfigurationError
from velvetrope.stores.cached_sessions import DEFAULT_TTL
from velvetrope.stores.composite import CompositeStores
from velvetrope.stores.protocols import FastStores, Stores

__all__ = [
    "FAST",
    "PRIMARY",
    "OpensFastStores",
    "OpensStores",
    "StoreOptions",
    "check_database_url",
    "describe_database_url",
    "open_stores",
    "sqlite_path",
]

PRIMARY: dict[str, str] = {
    "memory": "velvetrope.stores.memory:MemoryStores",
    "sqlite": "velvetrope.stores.sqlite:SQLiteStores",
    "postgresql": "velvetrope.stores.postgres:PostgresStores",
    "postgres": "velvetrope.stores.postgres:PostgresStores",
}
"""Backends that hold everything: URL scheme -> ``module:class``."""

FAST: dict[str, str] = {
    "redis": "velvetrope.stores.redis:RedisStores",
    "rediss": "velvetrope.stores.redis:RedisStores",
    "unix": "velvetrope.stores.redis:RedisStores",
    "redis+cluster": "velvetrope.stores.redis:RedisStores",
    "rediss+cluster": "velvetrope.stores.redis:RedisStores",
}
"""Backends for the per-request state next to a primary (``VELVETROPE_REDIS_URL``)."""


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """What settings tell the backends; each takes the options that concern it.

    Attributes:
        sqlite_synchronous: SQLite's ``synchronous`` pragma (``full`` fsyncs every commit).
        session_cache_ttl: The staleness bound of the session near-cache of networked
            backends (zero turns it off).
        redis_prefix: Starts every Redis key.
    """

    sqlite_synchronous: Literal["normal", "full"] = "normal"
    session_cache_ttl: timedelta = DEFAULT_TTL
    redis_prefix: str = "velvetrope:"


class OpensStores(Protocol):
    """A primary backend: its ``Stores`` class, whose ``from_url`` opens nothing yet."""

    def from_url(self, url: str, options: StoreOptions) -> Stores: ...


class OpensFastStores(Protocol):
    """A fast backend (Redis): its class, whose ``from_url`` opens nothing yet."""

    def from_url(self, url: str, options: StoreOptions) -> FastStores: ...


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "sqlite"


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


def check_database_url(url: str) -> None:
    """Check that a backend handles ``url``, without opening (or importing) anything.

    Raises:
        ConfigurationError: The URL names no file, or its scheme is not supported.
    """
    if url != "memory://" and _scheme(url) == "memory":
        raise ConfigurationError("the memory backend's URL is memory:// (nothing after it)")
    if _scheme(url) in PRIMARY:
        sqlite_path(url)
        return
    raise ConfigurationError(
        f"database URL scheme {_scheme(url)!r} is not supported; use sqlite:///PATH, "
        "postgresql://USER:PASSWORD@HOST/DATABASE or memory://"
    )


def describe_database_url(url: str) -> str:
    """A short description of the backend a URL selects, for logs and the CLI."""
    scheme = _scheme(url)
    if scheme == "memory":
        return "memory (nothing is kept after the process ends)"
    if scheme in ("postgresql", "postgres"):
        parts = urlsplit(url)  # host, port and database only: never the user or password
        return f"PostgreSQL at {parts.netloc.rpartition('@')[2] or 'localhost'}{parts.path}"
    if scheme == "sqlite":
        return f"SQLite at {sqlite_path(url)}"
    return scheme


def _load(table: dict[str, str], url: str, role: str) -> Any:
    target = table.get(_scheme(url))
    if target is None:
        raise ConfigurationError(
            f"{role} URL scheme {_scheme(url)!r} is not supported; use one of "
            + ", ".join(f"{s}://" for s in sorted(table))
        )
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def open_stores(
    url: str, *, fast_url: str | None = None, options: StoreOptions | None = None
) -> Stores:
    """The stores ``url`` names (with ``fast_url``'s beside them), not yet started.

    With ``fast_url`` (Redis), sessions, refresh families, the revocation feed and
    login counters live there; users and signing keys stay in ``url``'s database.
    Call ``await stores.start()`` to connect.

    Raises:
        ConfigurationError: A URL's scheme is not supported, or it is malformed.
    """
    options = options or StoreOptions()
    check_database_url(url)
    opens: OpensStores = _load(PRIMARY, url, "database")
    if fast_url is None:
        return opens.from_url(url, options)
    # The primary's sessions go unused next to the fast store: no near-cache there.
    primary_options = StoreOptions(
        sqlite_synchronous=options.sqlite_synchronous,
        session_cache_ttl=timedelta(0),
        redis_prefix=options.redis_prefix,
    )
    opens_fast: OpensFastStores = _load(FAST, fast_url, "Redis")
    return CompositeStores(
        opens.from_url(url, primary_options), opens_fast.from_url(fast_url, options)
    )
