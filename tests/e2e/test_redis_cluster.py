"""Three ``velvetrope serve`` nodes on PostgreSQL and a real Redis Cluster (RES-04).

The cluster is three masters and three replicas of local ``redis-server`` processes
(:mod:`tests.support.redis_cluster`). First the multi-node check of issue 4 on it: in
on one node, recognised on another, signed out on a third, refused on the first two
(revocations pushed over the cluster's pub/sub). Then the soak's mixed traffic
(:class:`tests.e2e.soak.Traffic`) while a master is killed and a replica takes its
place: requests fail closed (503 with a code) during the failover and recover
without a restart; the same figures as the soak are reported and checked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import soak
from tests.e2e.test_multinode import (
    EMAIL,
    REFUSE_WITHIN,
    bearer_for,
    sign_in,
    summary,
    wait_refused,
)
from tests.support.postgres import require_postgres, temp_database
from tests.support.redis_cluster import RedisCluster, running_redis_cluster
from tests.support.server import ServerProcess, Servers, auth, register

pytestmark = pytest.mark.e2e

TRIALS = 10
TRAFFIC_SECONDS = 16.0
MIN_REQUESTS = 100  # what a busy shared machine still sends in that time
CHANNEL = "velvetrope:notify"  # the nodes' pub/sub channel (the default prefix)
RESUME_WITHIN = 15.0  # seconds after the traffic for every node's push to be up again


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    with running_redis_cluster(Path(tmp_path_factory.mktemp("cluster"))) as started:
        yield started


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    require_postgres()
    with temp_database() as url:
        yield url


@pytest.fixture(scope="module")
def nodes(
    cluster: RedisCluster, database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServerProcess]]:
    servers = Servers(Path(tmp_path_factory.mktemp("nodes")))
    try:
        yield soak.start_nodes(servers, soak.node_env(database, cluster.url))
    finally:
        servers.stop_all()


def test_RES_04_signed_out_on_one_node_refused_on_the_others_over_a_cluster(
    nodes: list[ServerProcess],
) -> None:
    a, b, c = (node.client() for node in nodes)
    origin_c = nodes[2].base_url
    assert origin_c is not None
    latencies: dict[str, list[float]] = {"sessions": [], "access tokens": []}
    with a, b, c:
        register(a, EMAIL)
        for _ in range(TRIALS):
            signed_in = sign_in(a)
            cookie = auth(signed_in.secret)
            assert b.get("/auth/me", headers=cookie).status_code == 200
            start = time.perf_counter()
            response = c.post("/auth/logout", headers=signed_in.unsafe_headers(origin_c))
            assert response.status_code == 204, response.text
            latencies["sessions"].append(wait_refused([a, b], cookie, start) - start)

            bearer = bearer_for(a)
            assert b.get("/auth/me", headers=bearer).status_code == 200
            start = time.perf_counter()
            assert c.post("/auth/logout", headers=bearer).status_code == 204
            latencies["access tokens"].append(wait_refused([a, b], bearer, start) - start)
    for kind, seconds in latencies.items():
        print(f"\n[redis cluster] {kind}: sign-out on C -> refused on A and B: {summary(seconds)}")
        assert max(seconds) < REFUSE_WITHIN


def push_resumed(nodes: list[ServerProcess], figures: soak.Figures) -> None:
    """Every node's session near-cache reports its push subscription up again (``/ready``)."""
    deadline = time.monotonic() + RESUME_WITHIN
    for node in nodes:
        with node.client() as client:
            while True:
                response = client.get("/ready")
                if (
                    response.status_code == 200
                    and response.json()["session_cache"]["push_connected"]
                ):
                    break
                if time.monotonic() > deadline:
                    figures.failures.append(f"{node.base_url}: push not resumed after the failover")
                    break
                time.sleep(0.1)


def test_RES_04_a_master_failover_under_traffic_fails_closed_and_recovers(
    cluster: RedisCluster, database: str, nodes: list[ServerProcess]
) -> None:
    """The master killed is the one serving the push channel's slot, where every node's
    subscription is: the subscriptions must move to the replica that replaces it."""
    figures = soak.Figures()
    victim = cluster.master_of(CHANNEL)
    failover: dict[str, float] = {}

    def kill_master() -> None:
        failover["killed"] = time.monotonic()
        victim.kill()

    def replica_promoted() -> None:
        cluster.wait_replaced(victim)
        failover["promoted"] = time.monotonic()

    faults = [
        soak.Fault(
            "Redis Cluster master (SIGKILL), replica promoted", kill_master, replica_promoted
        )
    ]

    async def run() -> None:
        traffic = soak.Traffic([str(node.base_url) for node in nodes], figures)
        try:
            done = soak.run_faults(traffic, faults, seconds=TRAFFIC_SECONDS, down=0.0)
            await traffic.run_until(done)
            await asyncio.sleep(soak.TOKEN_BOUND)
            await soak.check_stores(traffic, database, cluster.url)
        finally:
            await traffic.aclose()

    try:
        asyncio.run(run())
        push_resumed(nodes, figures)
    finally:
        cluster.rejoin(victim)
    soak.check_logs(nodes, figures)
    took = failover["promoted"] - failover["killed"]
    print(
        "\n"
        + figures.report(
            f"Redis Cluster failover under traffic: {TRAFFIC_SECONDS:g} s, 3 nodes, "
            f"kill to replica promoted {took:.2f} s"
        )
    )
    assert figures.sent > MIN_REQUESTS, "too little traffic to mean anything"
    assert sum(figures.checked.values()) > 5
    assert not figures.failures, "\n".join(figures.failures)
