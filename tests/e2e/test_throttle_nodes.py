"""Login throttling is exact across nodes (issue 14): parallel wrong guesses spread over
three ``velvetrope serve`` processes on one store admit no more than one node would.

Every guess is sent at once (threads behind a barrier, on connections opened
beforehand), a third to each node. A guess the throttle admits is hashed and answered
401 ``invalid_credentials``; one it refuses is answered 429 ``too_many_attempts``.
The bound the issue sets is the free failures plus at most one extra per node; the
compare-and-count in the store (``ThrottleStore.count_if``) makes it exact.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.test_multinode import node_env, start_nodes
from tests.support.postgres import require_postgres, temp_database
from tests.support.redis import REDIS_URL, delete_prefix, new_prefix, require_redis
from tests.support.server import ServerProcess, Servers, register

pytestmark = pytest.mark.e2e

NODES = 3
GUESSES = 45  # fifteen per node
FREE_FAILURES = 5
IP_CEILING = 20


@pytest.fixture
def postgres_url() -> Iterator[str]:
    require_postgres()
    with temp_database() as url:
        yield url


@pytest.fixture(params=["postgres+redis", "postgres"])
def nodes(
    request: pytest.FixtureRequest, servers: Servers, postgres_url: str
) -> Iterator[list[ServerProcess]]:
    """Three nodes on PostgreSQL, the counters in Redis (or in PostgreSQL alone)."""
    env = node_env()
    env["VELVETROPE_LOGIN_FREE_FAILURES"] = str(FREE_FAILURES)
    prefix = None
    if request.param == "postgres+redis":
        require_redis()
        prefix = new_prefix()
        env |= node_env(redis_url=REDIS_URL, prefix=prefix)
    env["VELVETROPE_LOGIN_IP_FAILURES"] = str(IP_CEILING)
    yield start_nodes(servers, postgres_url, env)
    if prefix is not None:
        asyncio.run(delete_prefix(prefix))


def guess_at_once(nodes: list[ServerProcess], emails: list[str]) -> Counter[tuple[int, str]]:
    """Send one wrong guess per email, all at once, round-robin over the nodes; count
    the answers by (status, code)."""
    clients = [nodes[n % NODES].client() for n in range(len(emails))]
    try:
        return _race(clients, emails)
    finally:
        for client in clients:
            client.close()


def _race(clients: list[httpx.Client], emails: list[str]) -> Counter[tuple[int, str]]:
    for client in clients:  # open each connection before the race starts
        assert client.get("/health").status_code == 200
    barrier = threading.Barrier(len(emails))
    answers: list[tuple[int, str]] = []

    def guess(client: httpx.Client, email: str) -> None:
        barrier.wait()
        response = client.post("/auth/login", json={"email": email, "password": "wrong guess"})
        code = response.json().get("error", "") if response.content else ""
        answers.append((response.status_code, str(code)))

    threads = [
        threading.Thread(target=guess, args=(client, email))
        for client, email in zip(clients, emails, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == len(emails)
    return Counter(answers)


def admitted_within(answers: Counter[tuple[int, str]], bound: int, what: str) -> None:
    admitted = answers[(401, "invalid_credentials")]
    throttled = answers[(429, "too_many_attempts")]
    print(
        f"\n{what}: {sum(answers.values())} parallel wrong guesses over {NODES} nodes: "
        f"admitted {admitted}, bound {bound} ({throttled} throttled)"
    )
    assert admitted + throttled == sum(answers.values()), answers
    assert 0 < admitted <= bound, answers


def test_RES_01_parallel_guesses_over_three_nodes_admit_no_more_than_the_bound(
    nodes: list[ServerProcess], request: pytest.FixtureRequest
) -> None:
    """First at one account (its free failures), then each at another account from the
    same address (what is left of the address's ceiling)."""
    variant = request.node.callspec.id
    with nodes[0].client() as client:
        register(client, "ann@example.com")
    answers = guess_at_once(nodes, ["ann@example.com"] * GUESSES)
    admitted_within(answers, FREE_FAILURES + NODES, f"[{variant}] one account")
    # The address holds one place per failure so far; refused attempts gave theirs back.
    emails = [f"user{n}@example.com" for n in range(GUESSES)]
    answers = guess_at_once(nodes, emails)
    admitted_within(answers, IP_CEILING - FREE_FAILURES + NODES, f"[{variant}] one address")
