"""The stores a cell measures on: a name to the variables (or settings) that open it.

``memory`` and ``sqlite`` need nothing; ``redis`` keeps sessions, token families and the
revocation feed in the run's redis-server (users and keys in a SQLite file, as in
production) under a key prefix of its own; ``postgres`` gets a fresh database in the
run's cluster. The near-cache (``-cache``) is the per-node session cache of Redis and
PostgreSQL; without it every lookup is a round trip.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Final

from velvetrope.lab.services import Services, ServiceUnavailable

__all__ = ["STORES", "astore_env", "store_env"]

STORES: Final = ("memory", "sqlite", "redis", "postgres")


async def _create_database(admin_url: str, name: str) -> None:
    import asyncpg  # noqa: PLC0415 - only PostgreSQL cells need it

    try:
        conn = await asyncpg.connect(admin_url, timeout=10)
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ServiceUnavailable(f"cannot create a PostgreSQL database: {exc}") from exc


def store_env(
    store: str, scratch: Path, services: Services, *, near_cache: bool = True
) -> dict[str, str]:
    """:func:`astore_env` for code outside an event loop."""
    return asyncio.run(astore_env(store, scratch, services, near_cache=near_cache))


async def astore_env(
    store: str, scratch: Path, services: Services, *, near_cache: bool = True
) -> dict[str, str]:
    """``VELVETROPE_*`` variables that open ``store`` (a new, empty one every call).

    Raises:
        ServiceUnavailable: Its server cannot be started here.
        ValueError: An unknown store name.
    """
    sqlite = f"sqlite:///{scratch / f'velvetrope-{secrets.token_hex(4)}.db'}"
    cache = {"VELVETROPE_SESSION_CACHE_TTL": "1" if near_cache else "0"}
    if store == "memory":
        return {"VELVETROPE_DATABASE_URL": "memory://"}
    if store == "sqlite":
        return {"VELVETROPE_DATABASE_URL": sqlite}
    if store == "redis":
        return {
            "VELVETROPE_DATABASE_URL": sqlite,
            "VELVETROPE_REDIS_URL": services.redis().url,
            "VELVETROPE_REDIS_PREFIX": f"lab{secrets.token_hex(4)}:",
            **cache,
        }
    if store == "postgres":
        cluster = services.postgres()
        name = f"lab_{secrets.token_hex(6)}"
        await _create_database(cluster.url, name)
        return {"VELVETROPE_DATABASE_URL": cluster.url.rsplit("/", 1)[0] + f"/{name}", **cache}
    raise ValueError(f"unknown store {store!r}")
