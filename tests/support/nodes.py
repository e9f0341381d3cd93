"""Two in-process velvetrope nodes on one shared store (PostgreSQL, or Redis + SQLite).

Each node is its own ``AuthService`` (its own caches, key ring and secrets loaded from
the store) behind its own app and HTTP client, as two servers behind a load balancer
would be; they share only what the store holds: users, keys, sessions, families, and
the single-use values (DPoP proof ids, DBSC challenges).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.postgres import ADMIN_URL, DisposableStores, require_postgres
from tests.support.redis import REDIS_URL, RedisTestStores, new_prefix, require_redis
from tests.support.services import app_settings, asgi_client, started_service
from velvetrope import AuthService, FrozenClock, PasswordHasher, Velvetrope, create_app
from velvetrope.stores import SQLiteStores, Stores
from velvetrope.stores.composite import CompositeStores
from velvetrope.stores.postgres import PostgresStores
from velvetrope.stores.redis import RedisStores

__all__ = ["SHARED_STORES", "Node", "two_nodes"]

SHARED_STORES = ["postgres", "redis"]


@dataclass
class Node:
    """One node: its service and an HTTP client talking to its app."""

    service: AuthService
    http: httpx.AsyncClient


def _shared(kind: str, tmp_path: Path) -> tuple[Stores, Stores]:
    """Two store sets over the same data (the first one cleans up when closed)."""
    if kind == "postgres":
        require_postgres()
        first = DisposableStores()
        assert first.schema is not None
        return first, PostgresStores(ADMIN_URL, schema=first.schema)
    require_redis()
    prefix, db = new_prefix(), tmp_path / "shared.db"
    return (
        RedisTestStores(SQLiteStores(db), RedisStores(REDIS_URL, prefix=prefix)),
        CompositeStores(SQLiteStores(db), RedisStores(REDIS_URL, prefix=prefix)),
    )


@contextlib.asynccontextmanager
async def two_nodes(
    kind: str,
    tmp_path: Path,
    *,
    clock: FrozenClock,
    hasher: PasswordHasher,
    settings: dict[str, Any] | None = None,
    **options: Any,
) -> AsyncIterator[tuple[Node, Node]]:
    """Two started nodes on one ``kind`` of shared store, with the test policies,
    ``settings`` for the apps and ``options`` for the services; closed afterwards."""
    first, second = _shared(kind, tmp_path)
    nodes: list[Node] = []
    async with contextlib.AsyncExitStack() as stack:
        for stores in (first, second):
            service = await started_service(stores, clock=clock, hasher=hasher, **options)
            stack.push_async_callback(service.aclose)
            vr = Velvetrope(app_settings(**(settings or {})), service=service)
            http = await stack.enter_async_context(asgi_client(create_app(velvetrope=vr)))
            nodes.append(Node(service, http))
        yield nodes[0], nodes[1]
