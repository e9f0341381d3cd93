"""Every store backend by name, opened fresh and empty for one test.

The ``backend`` fixture (``tests/conftest.py``) names the backend a test's ``stores``
and ``service`` run on. It is the memory store, unless the test is about store
behaviour: the store contract suite (all of ``tests/stores``) and tests marked
:data:`every_backend` run once per name in :data:`BACKENDS`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.postgres import open_postgres
from tests.support.redis import open_redis
from velvetrope.stores import MemoryStores, SQLiteStores, Stores

__all__ = ["BACKENDS", "every_backend", "open_backend"]

BACKENDS = ["memory", "sqlite", "redis", "postgres"]

every_backend = pytest.mark.every_backend
"""Run the marked test, or (as a module's ``pytestmark``) each test of the module that
uses a store, once per backend in :data:`BACKENDS` instead of on memory alone. For
tests whose outcome depends on what the store does: atomicity, revocation and
rotation state, expiry kept in the store, hostile input reaching a store query."""


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
