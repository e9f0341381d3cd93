"""What the operator features add to the per-request check, in microseconds.

Measured in process (no HTTP), median of rounds of many calls each:

* ``epoch read``: ``RevocationState.behind()`` on SQLite, the shared-memory read that
  makes revocations exact across ``serve --workers`` (and any process on the file);
* ``bearer check, SQLite``: ``AuthService.authenticate_bearer`` for a cached token on
  SQLite (epoch read included) against the same on ``memory://`` (no epoch);
* ``metrics timer``: two ``perf_counter()`` reads and one histogram-bucket increment
  (what ``VELVETROPE_METRICS_PORT`` adds to every check).

Run: ``.venv/bin/python benchmarks/operations.py`` (about ten seconds). Figures from a
shared, busy machine vary by tens of percent between runs; compare within one run.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from velvetrope import AuthService, MemoryStores, PasswordHasher
from velvetrope.core.tokens.access import TokenPolicy
from velvetrope.stores import SQLiteStores, Stores
from velvetrope.web.metrics import AuthMetrics

ROUNDS = 7
CALLS = 20_000
PASSWORD = "correct horse battery staple"


def per_call_us(call: Callable[[], object]) -> float:
    """Median over rounds of the mean cost of one call, in microseconds."""
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(CALLS):
            call()
        rounds.append((time.perf_counter() - started) / CALLS * 1e6)
    return statistics.median(rounds)


async def per_await_us(call: Callable[[], Awaitable[object]]) -> float:
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(CALLS):
            await call()
        rounds.append((time.perf_counter() - started) / CALLS * 1e6)
    return statistics.median(rounds)


async def started(stores: Stores) -> tuple[AuthService, str]:
    service = AuthService(
        stores,
        hasher=PasswordHasher("owasp-minimum"),
        token_policy=TokenPolicy(issuer="urn:bench", audience="urn:bench"),
    )
    await service.start()
    await service.register("ann@example.com", PASSWORD)
    pair = await service.token_login("ann@example.com", PASSWORD)
    await service.authenticate_bearer(pair.access_token)  # cached from here on
    return service, pair.access_token


async def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        sqlite, sqlite_token = await started(SQLiteStores(Path(scratch) / "vr.db"))
        memory, memory_token = await started(MemoryStores())
        try:
            rows = {
                "epoch read (RevocationState.behind)": per_call_us(
                    sqlite.tokens.revocations.behind
                ),
                "bearer check, cached token, memory:// (no epoch)": await per_await_us(
                    lambda: memory.authenticate_bearer(memory_token)
                ),
                "bearer check, cached token, SQLite (with epoch)": await per_await_us(
                    lambda: sqlite.authenticate_bearer(sqlite_token)
                ),
            }
            metrics = AuthMetrics(CollectorRegistry())
            rows["metrics timer (perf_counter + bucket)"] = per_call_us(
                lambda: metrics.observe_check(time.perf_counter())
            )
            metrics.flush()
        finally:
            await sqlite.aclose()
            await memory.aclose()
    print(f"python {sys.version.split()[0]}; median of {ROUNDS} rounds of {CALLS} calls")
    for name, value in rows.items():
        print(f"{value:8.3f} us  {name}")


if __name__ == "__main__":
    asyncio.run(main())
