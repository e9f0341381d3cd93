"""``/ready`` reports the node's caches: the revocation feed's age and the session cache.

Runs once per backend (``tests.support.stores.BACKENDS``): Redis and PostgreSQL sessions
sit behind a near-cache, memory and SQLite ones do not.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.stores import every_backend

pytestmark = every_backend  # /ready reports the store itself

CACHED = {"redis", "postgres"}


async def test_ready_reports_the_session_cache_where_there_is_one(
    client: httpx.AsyncClient, backend: str
) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    cache = response.json()["session_cache"]
    if backend not in CACHED:
        assert cache is None
        return
    assert cache == {
        "enabled": True,
        "push_connected": True,
        "max_staleness_seconds": 1.0,
        "entries": 0,
        "hits": 0,
        "misses": 0,
        "max_entries": 10_000,
    }


@pytest.mark.parametrize("backend", sorted(CACHED))  # overrides the fixture's four
async def test_every_session_lookup_goes_through_the_cache(
    signed_in: httpx.AsyncClient, backend: str
) -> None:
    before = (await signed_in.get("/ready")).json()["session_cache"]
    for _ in range(3):
        assert (await signed_in.get("/auth/me")).status_code == 200
    after = (await signed_in.get("/ready")).json()["session_cache"]
    lookups = after["hits"] + after["misses"] - before["hits"] - before["misses"]
    assert lookups == 3


async def test_PERF_04_ready_reports_every_cache_with_its_bound(
    signed_in: httpx.AsyncClient, backend: str
) -> None:
    caches = (await signed_in.get("/ready")).json()["caches"]
    assert set(caches) == {
        "verified_tokens",
        "dpop_replays",
        "dpop_proof_keys",
        "token_headers",
        "checked_keys",
        "password_hashing",
    }
    for name, cache in caches.items():
        if "max_entries" in cache:
            assert 0 <= cache["entries"] <= cache["max_entries"], name
    assert caches["verified_tokens"]["max_entries"] == 10_000
    assert caches["dpop_replays"]["max_entries"] == 65_536
    assert caches["dpop_replays"]["scope"] in {"process", "shared"}
    hashing = caches["password_hashing"]
    assert hashing["completed"] >= 1  # signing in hashed a password
    assert hashing["in_flight"] == 0
    assert hashing["queue"] == 32
