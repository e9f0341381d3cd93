"""Several velvetrope nodes sharing Redis: sign in on one, out on another (issue 4).

Three real ``velvetrope serve`` processes share one SQLite file for users and keys
and one Redis for sessions, token families and the revocation feed. The tests measure
how long after a sign-out the *other* nodes refuse the credential.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import PASSWORD, Servers, auth, login, register
from tests.stores.redis_backend import (
    REDIS_URL,
    RedisServer,
    delete_prefix,
    new_prefix,
    require_redis,
)

pytestmark = pytest.mark.e2e

TRIALS = 100
ISSUER = "https://auth.multinode.test"


@pytest.fixture
def prefix() -> Iterator[str]:
    require_redis()
    chosen = new_prefix()
    yield chosen
    asyncio.run(delete_prefix(chosen))


def node_env(redis_url: str, prefix: str) -> dict[str, str]:
    return {
        "VELVETROPE_REDIS_URL": redis_url,
        "VELVETROPE_REDIS_PREFIX": prefix,
        # every node must issue and accept the same iss/aud, whatever its port
        "VELVETROPE_TOKEN_ISSUER": ISSUER,
        "VELVETROPE_TOKEN_AUDIENCE": ISSUER,
        "VELVETROPE_PASSWORD_HASH_PROFILE": "owasp-minimum",
        "VELVETROPE_LOGIN_IP_FAILURES": "100000",
    }


def wait_refused(clients: list[httpx.Client], headers: dict[str, str], deadline: float) -> float:
    """Poll every client until each refuses ``headers``; return when the last one did."""
    pending = list(clients)
    while pending:
        if time.perf_counter() > deadline:
            pytest.fail("a node still accepted a signed-out credential after 2 s")
        pending = [c for c in pending if c.get("/auth/me", headers=headers).status_code == 200]
    return time.perf_counter()


def report(kind: str, latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000
    print(
        f"\n{kind}: logout -> refused on the other nodes over {len(ordered)} trials: "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {ordered[-1] * 1000:.1f} ms"
    )
    return p50, p99


def test_sessions_and_tokens_are_shared_and_revocation_reaches_every_node_fast(
    servers: Servers, database: Path, prefix: str
) -> None:
    env = node_env(REDIS_URL, prefix)
    nodes = [servers.start(database, env=env) for _ in range(3)]
    a, b, c = (node.client() for node in nodes)
    with a, b, c:
        register(a, "ann@example.com")
        session_latencies: list[float] = []
        token_latencies: list[float] = []
        for _ in range(TRIALS):
            secret = login(a, "ann@example.com")
            assert b.get("/auth/me", headers=auth(secret)).status_code == 200  # seen on B
            start = time.perf_counter()
            assert c.post("/auth/logout", headers=auth(secret)).status_code == 204
            done = wait_refused([a, b], auth(secret), start + 2)
            session_latencies.append(done - start)

            tokens = a.post(
                "/auth/token",
                data={
                    "grant_type": "password",
                    "username": "ann@example.com",
                    "password": PASSWORD,
                },
            ).json()
            bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
            assert b.get("/auth/me", headers=bearer).status_code == 200  # B caches it
            assert a.get("/auth/me", headers=bearer).status_code == 200
            start = time.perf_counter()
            assert c.post("/auth/logout", headers=bearer).status_code == 204
            done = wait_refused([a, b], bearer, start + 2)
            token_latencies.append(done - start)
        _, session_p99 = report("sessions", session_latencies)
        _, token_p99 = report("JWT access tokens", token_latencies)
        # The target is 50 ms at p99 (measured figures go in the issue note). The test
        # asserts a looser bound that still proves the push works on a busy CI machine:
        # polling alone (once a second) would put the median near 500 ms.
        assert session_p99 < 250
        assert token_p99 < 250


def test_TERM_05_a_redis_outage_fails_closed_and_recovers_without_a_restart(
    servers: Servers, database: Path, tmp_path: Path
) -> None:
    redis_server = RedisServer("redis-server", tmp_path)
    redis_server.start("--appendonly", "yes", "--appendfsync", "always")  # persistence on
    try:
        node = servers.start(database, env=node_env(redis_server.url, "velvetrope:"))
        with node.client() as http:
            register(http, "ann@example.com")
            secret = login(http, "ann@example.com")
            assert http.get("/auth/me", headers=auth(secret)).status_code == 200
            redis_server.stop()
            during = [http.get("/auth/me", headers=auth(secret)) for _ in range(20)]
            assert {r.status_code for r in during} == {503}
            assert {r.json()["error"] for r in during} == {"store_unavailable"}
            assert http.get("/ready").status_code == 503
            redis_server.start("--appendonly", "yes", "--appendfsync", "always")
            deadline = time.monotonic() + 10
            status = 0
            while time.monotonic() < deadline:
                status = http.get("/auth/me", headers=auth(secret)).status_code
                if status == 200:
                    break
                assert status == 503  # never let through, never a 500
                time.sleep(0.1)
            assert status == 200  # the same session survived the Redis restart
            assert http.get("/ready").status_code == 200
    finally:
        redis_server.stop()
