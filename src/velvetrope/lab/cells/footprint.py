"""Cell 7, footprint: bytes per stored session and per token family, and their growth.

Per store (SQLite, Redis, PostgreSQL), sessions and then refresh families (what a JWT
client leaves on the server: one per signed-in device) are created through velvetrope's
own services, with a typical browser ``User-Agent`` and address, ten per user, up to
each level (1k, 10k, 100k in a full run). At each level the store's size is read:

* SQLite: the database's pages in use after a WAL checkpoint;
* Redis: ``used_memory`` from ``INFO memory``;
* PostgreSQL: the total size (heap, indexes, TOAST) of the schema's tables.

Sessions are written to the store as ``SessionService.start`` writes them, without its
per-user limit check (a read); families through ``RefreshTokens.start`` itself.

The figure is (size at the level - size before) / records: the bytes one record costs,
indexes and per-user sets included.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from velvetrope.core.ids import new_handle, new_secret, secret_digest
from velvetrope.core.service import AuthService
from velvetrope.lab.cells.verify import lab_settings, started_service
from velvetrope.lab.context import LabContext
from velvetrope.lab.model import CellResult, Figure, Series, not_available
from velvetrope.lab.services import ServiceUnavailable
from velvetrope.lab.stores import astore_env
from velvetrope.stores.records import SessionRecord, UserRecord

__all__ = ["measure"]

USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
IP = "203.0.113.7"
PER_USER = 10
BATCH = 32  # concurrent writes: within every store's connection pool
Meter = Callable[[], Awaitable[int]]


def _sqlite_meter(url: str) -> Meter:
    path = url.removeprefix("sqlite:///")

    async def size() -> int:
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            page = conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * page)

    return size


def _redis_meter(url: str) -> Meter:
    import redis.asyncio as aredis  # noqa: PLC0415 - only the Redis store needs it

    async def size() -> int:
        client: Any = aredis.Redis.from_url(url)
        try:
            info = await client.info("memory")
            return int(info["used_memory"])
        finally:
            await client.aclose()

    return size


def _postgres_meter(url: str) -> Meter:
    import asyncpg  # noqa: PLC0415 - only the PostgreSQL store needs it

    async def size() -> int:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            total = await conn.fetchval(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'r' AND n.nspname = current_schema()"
            )
            return int(total)
        finally:
            await conn.close()

    return size


async def _users(service: AuthService, count: int) -> list[str]:
    now = datetime.now(UTC)
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(count)]
    for start in range(0, count, BATCH):
        await asyncio.gather(
            *(
                service.stores.users.add(
                    UserRecord(
                        id=i,
                        email=f"u{i[-12:]}@example.com",
                        password_hash="$argon2id$v=19$m=19456,t=2,p=1$lab$lab",
                        created_at=now,
                    )
                )
                for i in ids[start : start + BATCH]
            )
        )
    return ids


def _session(user_id: str, lifetime: timedelta) -> SessionRecord:
    """A session record exactly as ``SessionService.start`` makes one (without its
    per-user limit check, which reads and costs time but stores nothing)."""
    now = datetime.now(UTC)
    return SessionRecord(
        id_digest=secret_digest(new_secret()),
        handle=new_handle(),
        user_id=user_id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        authenticated_at=now,
        ip=IP,
        user_agent=USER_AGENT,
    )


async def _fill(
    make: Callable[[str], Awaitable[object]], users: list[str], done: int, upto: int
) -> None:
    for start in range(done, upto, BATCH):
        stop = min(upto, start + BATCH)
        await asyncio.gather(*(make(users[i // PER_USER]) for i in range(start, stop)))


async def _store(ctx: LabContext, result: CellResult, store: str, levels: list[int]) -> None:
    env = await astore_env(store, ctx.scratch, ctx.services, near_cache=False)
    service = await started_service(lab_settings(env))
    meter = {
        "sqlite": lambda: _sqlite_meter(env["VELVETROPE_DATABASE_URL"]),
        "redis": lambda: _redis_meter(env.get("VELVETROPE_REDIS_URL", "")),
        "postgres": lambda: _postgres_meter(env["VELVETROPE_DATABASE_URL"]),
    }[store]()
    lifetime = service.sessions.policy.absolute_lifetime
    try:
        users = await _users(service, levels[-1] // PER_USER + 1)
        kinds: dict[str, Callable[[str], Awaitable[object]]] = {
            "session": lambda u: service.stores.sessions.add(_session(u, lifetime)),
            "family": lambda u: service.tokens.refresh.start(u, ip=IP, user_agent=USER_AGENT),
        }
        for kind, make in kinds.items():
            base, done, xs, ys = await meter(), 0, [], []
            for level in levels:
                what = "session" if kind == "session" else "token family"
                label = f"bytes per {what}, {store}, {level:,} stored"
                key = f"{kind}.{store}.{level}"
                if ctx.time_left() < 0:
                    result.figures.append(
                        not_available(
                            key, label, "bytes", "the cell's time budget ran out before this level"
                        )
                    )
                    continue
                ctx.step(f"{store}: {level:,} {kind}s")
                with ctx.noise.round(result.id, f"{store} {kind} {level}"):
                    started = time.monotonic()
                    await _fill(make, users, done, level)
                    done = level
                    per = (await meter() - base) / level
                result.figures.append(
                    Figure(
                        key,
                        label,
                        "bytes",
                        value=max(per, 0.001),
                        extra={"fill_seconds": time.monotonic() - started},
                    )
                )
                xs.append(float(level))
                ys.append(per)
            result.series.append(Series(f"{kind} {store}", tuple(xs), tuple(ys)))
    finally:
        await service.aclose()


async def _measure(ctx: LabContext, result: CellResult) -> None:
    levels = ctx.pick([200, 800], [1_000, 10_000, 100_000])
    for store in ("sqlite", "redis", "postgres"):
        try:
            await _store(ctx, result, store, levels)
        except ServiceUnavailable as exc:
            for kind in ("session", "family"):
                for level in levels:
                    what = "session" if kind == "session" else "token family"
                    result.figures.append(
                        not_available(
                            f"{kind}.{store}.{level}",
                            f"bytes per {what}, {store}, {level:,} stored",
                            "bytes",
                            str(exc),
                        )
                    )


def measure(ctx: LabContext, result: CellResult) -> None:
    """Fill ``result``."""
    asyncio.run(_measure(ctx, result))
