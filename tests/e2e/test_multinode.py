"""Several velvetrope nodes sharing PostgreSQL (and Redis): in on one, out on another (issue 4).

Three real ``velvetrope serve`` processes share a fresh PostgreSQL database for users
and keys. With Redis, sessions, token families and the revocation feed live there and
revocations are pushed over pub/sub; without it everything lives in PostgreSQL and
revocations are pushed with ``LISTEN``/``NOTIFY``. Each trial signs in on node A, is
recognised on B, signs out on C, and measures how long until A and B both refuse the
credential.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.postgres import require_postgres, temp_database
from tests.support.redis import REDIS_URL, delete_prefix, new_prefix, require_redis
from tests.support.server import (
    ServerProcess,
    Servers,
    auth,
    register,
    session_cookie,
)
from tests.support.services import PASSWORD

pytestmark = pytest.mark.e2e

TRIALS = 100
ISSUER = "https://auth.multinode.test"
EMAIL = "ann@example.com"
REFUSE_WITHIN = 2.0  # seconds; the nodes poll the feed only every REVOCATION_POLL
REVOCATION_POLL = "60"  # so a refusal within REFUSE_WITHIN can only come from the push


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new database on the shared PostgreSQL server, dropped after the test."""
    require_postgres()
    with temp_database() as url:
        yield url


@pytest.fixture
def prefix() -> Iterator[str]:
    """A Redis key prefix of the test's own on the shared server, deleted after."""
    require_redis()
    chosen = new_prefix()
    yield chosen
    asyncio.run(delete_prefix(chosen))


def node_env(*, redis_url: str | None = None, prefix: str | None = None) -> dict[str, str]:
    env = {
        # every node must issue and accept the same iss/aud, whatever its port
        "VELVETROPE_TOKEN_ISSUER": ISSUER,
        "VELVETROPE_TOKEN_AUDIENCE": ISSUER,
        "VELVETROPE_PASSWORD_HASH_PROFILE": "owasp-minimum",
        "VELVETROPE_LOGIN_IP_FAILURES": "100000",
        "VELVETROPE_REVOCATION_POLL": REVOCATION_POLL,
    }
    if redis_url is not None:
        env["VELVETROPE_REDIS_URL"] = redis_url
    if prefix is not None:
        env["VELVETROPE_REDIS_PREFIX"] = prefix
    return env


def start_nodes(servers: Servers, database_url: str, env: dict[str, str]) -> list[ServerProcess]:
    """Start three nodes on ``database_url`` at once (they migrate under one lock)."""
    nodes = [servers.spawn("--port", "0", "--database", database_url, env=env) for _ in range(3)]
    for node in nodes:
        node.start()
    return nodes


@dataclass(frozen=True)
class SignedIn:
    """A session cookie and the CSRF token that goes with it."""

    secret: str
    csrf_token: str

    def unsafe_headers(self, origin: str) -> dict[str, str]:
        """Headers for a POST/DELETE with the cookie to the node at ``origin``."""
        return {**auth(self.secret), "Origin": origin, "X-CSRF-Token": self.csrf_token}


def sign_in(client: httpx.Client) -> SignedIn:
    response = client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return SignedIn(session_cookie(response).value, response.json().get("csrf_token", ""))


def bearer_for(client: httpx.Client) -> dict[str, str]:
    response = client.post(
        "/auth/token", data={"grant_type": "password", "username": EMAIL, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def wait_refused(clients: list[httpx.Client], headers: dict[str, str], start: float) -> float:
    """Poll every client until each answers 401 to ``headers``; return when the last did.

    Fails if a node still accepts after ``REFUSE_WITHIN`` seconds, or answers anything
    but 200 or 401.
    """
    pending = list(clients)
    while pending:
        if time.perf_counter() > start + REFUSE_WITHIN:
            pytest.fail(f"a node still accepted a signed-out credential after {REFUSE_WITHIN} s")
        still = []
        for client in pending:
            status = client.get("/auth/me", headers=headers).status_code
            assert status in {200, 401}, status
            if status == 200:
                still.append(client)
        pending = still
    return time.perf_counter()


@dataclass(frozen=True)
class Latencies:
    """Seconds from sending the sign-out to the last other node refusing, and from its 204."""

    from_request: list[float]
    from_response: list[float]


def measure(nodes: list[ServerProcess]) -> tuple[Latencies, Latencies]:
    """Run the trials for sessions and for access tokens; return their latencies."""
    a, b, c = (node.client() for node in nodes)
    origin_c = nodes[2].base_url
    assert origin_c is not None
    sessions = Latencies([], [])
    tokens = Latencies([], [])
    with a, b, c:
        register(a, EMAIL)
        for _ in range(TRIALS):
            signed_in = sign_in(a)
            cookie = auth(signed_in.secret)
            assert b.get("/auth/me", headers=cookie).status_code == 200  # recognised on B
            start = time.perf_counter()
            response = c.post("/auth/logout", headers=signed_in.unsafe_headers(origin_c))
            answered = time.perf_counter()
            assert response.status_code == 204, response.text
            done = wait_refused([a, b], cookie, start)
            assert c.get("/auth/me", headers=cookie).status_code == 401
            sessions.from_request.append(done - start)
            sessions.from_response.append(done - answered)

            bearer = bearer_for(a)
            assert b.get("/auth/me", headers=bearer).status_code == 200  # B caches it
            assert a.get("/auth/me", headers=bearer).status_code == 200
            start = time.perf_counter()
            response = c.post("/auth/logout", headers=bearer)
            answered = time.perf_counter()
            assert response.status_code == 204, response.text
            done = wait_refused([a, b], bearer, start)
            assert c.get("/auth/me", headers=bearer).status_code == 401
            tokens.from_request.append(done - start)
            tokens.from_response.append(done - answered)
    return sessions, tokens


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted seconds, in milliseconds."""
    rank = max(1, math.ceil(len(ordered) * fraction - 1e-9))  # 0.07 * 100 > 7.0
    return ordered[min(rank, len(ordered)) - 1] * 1000


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    return (
        f"p50 {statistics.median(ordered) * 1000:.1f} ms, "
        f"p95 {percentile(ordered, 0.95):.1f} ms, "
        f"p99 {percentile(ordered, 0.99):.1f} ms, max {ordered[-1] * 1000:.1f} ms"
    )


def report(variant: str, sessions: Latencies, tokens: Latencies) -> None:
    """Print the figures (shown with ``pytest -s``; quoted in the issue's closing note)."""
    for kind, latencies in (("sessions", sessions), ("JWT access tokens", tokens)):
        print(
            f"\n[{variant}] {kind}: sign-out on C -> refused on A and B, {TRIALS} trials: "
            f"{summary(latencies.from_request)} "
            f"(after C's 204: {summary(latencies.from_response)})"
        )


def check(sessions: Latencies, tokens: Latencies) -> None:
    """Every trial was refused on both other nodes within ``REFUSE_WITHIN`` (``wait_refused``
    fails otherwise) while the nodes poll only every ``REVOCATION_POLL``: the push did it.

    The latencies themselves (target: p99 under 50 ms) are printed for the issue note and
    measured in the lab's revocation cell, not asserted here: on a loaded CI machine a
    single slow trial says nothing about the mechanism."""
    assert len(sessions.from_request) == len(tokens.from_request) == TRIALS
    assert max(sessions.from_request + tokens.from_request) < REFUSE_WITHIN


def test_nodes_sharing_postgres_and_redis_refuse_a_sign_out_made_elsewhere_fast(
    postgres_url: str, prefix: str, servers: Servers
) -> None:
    """Users and keys in PostgreSQL, the rest in Redis; pushes over Redis pub/sub."""
    nodes = start_nodes(servers, postgres_url, node_env(redis_url=REDIS_URL, prefix=prefix))
    sessions, tokens = measure(nodes)
    report("PostgreSQL + Redis", sessions, tokens)
    check(sessions, tokens)


def test_nodes_sharing_only_postgres_refuse_a_sign_out_made_elsewhere_fast(
    postgres_url: str, servers: Servers
) -> None:
    """Everything in PostgreSQL; pushes with LISTEN/NOTIFY."""
    nodes = start_nodes(servers, postgres_url, node_env())
    sessions, tokens = measure(nodes)
    report("PostgreSQL only (LISTEN/NOTIFY)", sessions, tokens)
    check(sessions, tokens)
