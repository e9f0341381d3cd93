"""The store contract suite on a real Redis Cluster: three masters, three replicas (RES-04).

The cluster is six local ``redis-server`` processes (:mod:`tests.support.redis_cluster`),
started once for the module. Every contract test that needs only ``stores`` runs on
``redis+cluster://`` stores under a fresh key prefix, so keys spread over all three
masters; scripts, transactions and pipelines must keep to one slot each where the
backend promises it, and pub/sub must reach every node.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from redis.exceptions import RedisClusterException, SlotNotCoveredError

from tests.stores import (
    test_contract,
    test_contract_fields,
    test_contract_one_time,
    test_contract_security_log,
    test_contract_throttle,
    test_contract_tokens,
)
from tests.support.aio import within
from tests.support.redis import new_prefix
from tests.support.redis_cluster import RedisCluster, running_redis_cluster
from velvetrope.errors import StoreUnavailable
from velvetrope.stores import MemoryStores, Stores
from velvetrope.stores.composite import CompositeStores
from velvetrope.stores.redis import RedisStores
from velvetrope.stores.redis._base import guard

CONTRACT: tuple[ModuleType, ...] = (
    test_contract,
    test_contract_fields,
    test_contract_one_time,
    test_contract_security_log,
    test_contract_throttle,
    test_contract_tokens,
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    with running_redis_cluster(Path(tmp_path_factory.mktemp("cluster"))) as started:
        yield started


@pytest.fixture
async def cluster_stores(cluster: RedisCluster) -> AsyncIterator[RedisStores]:
    stores = RedisStores(cluster.url, prefix=new_prefix())
    await stores.start()
    yield stores
    await stores.aclose()


def contract_tests() -> list[tuple[str, Callable[[Stores], Awaitable[None]]]]:
    """Every contract test that takes only ``stores`` (the others pick their backends)."""
    return [
        (f"{module.__name__.rsplit('.', 1)[1]}::{name}", test)
        for module in CONTRACT
        for name, test in sorted(vars(module).items())
        if name.startswith("test_") and list(inspect.signature(test).parameters) == ["stores"]
    ]


async def test_RES_04_the_store_contract_holds_on_a_redis_cluster(cluster: RedisCluster) -> None:
    tests = contract_tests()
    assert len(tests) > 40
    failures = []
    for name, test in tests:
        stores = RedisStores(cluster.url, prefix=new_prefix())
        await stores.start()
        try:
            await test(CompositeStores(MemoryStores(), stores))
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
        finally:
            await stores.aclose()
    print(f"\n{len(tests)} contract tests on a 3-master, 3-replica Redis Cluster")
    assert not failures, "\n".join(failures)


async def test_RES_04_keys_spread_over_every_master(
    cluster: RedisCluster, cluster_stores: RedisStores
) -> None:
    """The data really is sharded: sessions of many users land on all three masters."""
    stores = CompositeStores(MemoryStores(), cluster_stores)
    for n in range(60):
        await stores.sessions.add(test_contract.session(f"u{n}", n))
    holding = 0
    for master in cluster.masters():
        client = cluster._client(master)
        try:
            holding += bool(client.dbsize())
        finally:
            client.close()
    assert holding == 3


async def test_RES_04_a_push_reaches_a_listener_on_another_node(
    cluster_stores: RedisStores,
) -> None:
    """Pub/sub on a cluster: a topic published through the stores reaches a listener
    whatever node either talks to (PUBLISH is broadcast over the cluster bus)."""
    received: asyncio.Queue[str] = asyncio.Queue()
    connected = asyncio.Event()

    async def on_change(topic: str) -> None:
        await received.put(topic)

    def on_status(up: bool) -> None:
        if up:
            connected.set()

    listener = asyncio.create_task(cluster_stores.notifier.listen(on_change, on_status=on_status))
    try:
        await within(10, connected.wait())
        for n in range(5):
            await cluster_stores.notifier.publish(f"topic-{n}")
        got = [await within(10, received.get()) for _ in range(5)]
        assert got == [f"topic-{n}" for n in range(5)]
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


def test_RES_04_a_cluster_without_a_master_for_a_slot_fails_closed() -> None:
    """During a failover the cluster client raises its own errors, which are no
    ``RedisError`` (found by the failover test: a 500, and a node's background jobs
    stopped); they fail closed like any outage."""
    for error in (SlotNotCoveredError('Slot "5" is not covered'), RedisClusterException("x")):
        with pytest.raises(StoreUnavailable), guard():
            raise error
