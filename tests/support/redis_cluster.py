"""A real Redis Cluster of local ``redis-server`` processes: three masters, three replicas.

Each node is a :class:`~tests.support.redis.RedisServer` (free port, its own directory,
no persistence) started with ``--cluster-enabled yes``; ``redis-cli --cluster create``
joins them, gives each master a third of the slots and each a replica. The node
timeout is short (one second) so that a killed master is replaced within seconds.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot
from redis.exceptions import RedisError

from tests.support.redis import RedisServer, require_redis_server
from tests.support.require import require

__all__ = ["RedisCluster", "running_redis_cluster"]

NODE_TIMEOUT_MS = 1000
MASTERS = 3


class RedisCluster:
    """Six ``redis-server`` processes joined as a cluster with one replica per master."""

    def __init__(self, workdir: Path) -> None:
        executable = require_redis_server()
        self._cli = require(shutil.which("redis-cli"), "redis-cli is not on PATH (install Redis)")
        self.nodes: list[RedisServer] = []
        for n in range(2 * MASTERS):
            directory = workdir / f"node{n}"
            directory.mkdir(parents=True, exist_ok=True)
            self.nodes.append(RedisServer(executable, directory))

    @property
    def url(self) -> str:
        """``redis+cluster://`` naming every node (any one of them is enough to start)."""
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)
        return f"redis+cluster://{hosts}"

    def _options(self) -> tuple[str, ...]:
        return (
            *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
            *("--cluster-node-timeout", str(NODE_TIMEOUT_MS)),
            # A replica may take over however long it was cut off (it always is here).
            *("--cluster-replica-validity-factor", "0"),
        )

    def start(self) -> None:
        """Start the six nodes, create the cluster, and wait until every node says ok."""
        for node in self.nodes:
            node.start(*self._options())
        done = subprocess.run(
            [
                self._cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                *("--cluster-replicas", "1", "--cluster-yes"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{done.stdout}{done.stderr}")
        self.wait_ok(self.nodes)

    def _client(self, node: RedisServer) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=node.port,
            decode_responses=True,
            socket_connect_timeout=1,
            socket_timeout=2,
        )

    def info(self, node: RedisServer, section: str) -> str:
        client = self._client(node)
        command: Callable[..., Any] = client.execute_command  # untyped in redis-py
        try:
            return str(command("CLUSTER", section.upper()))
        finally:
            client.close()

    def wait_ok(self, nodes: list[RedisServer], timeout: float = 30) -> None:
        """Wait until each of ``nodes`` reports ``cluster_state:ok``, with every slot
        served by a live master."""
        deadline = time.monotonic() + timeout
        pending = list(nodes)
        while pending:
            with contextlib.suppress(RedisError, OSError):
                if "cluster_state:ok" in self.info(pending[0], "info"):
                    pending.pop(0)
                    continue
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not become ready in time")
            time.sleep(0.05)

    def masters(self) -> list[RedisServer]:
        """The nodes that are masters now (as a live node sees them)."""
        by_port = {node.port: node for node in self.nodes}
        for node in self.nodes:
            try:
                table = self.info(node, "nodes")
            except (RedisError, OSError):
                continue
            found = []
            for line in table.splitlines():
                fields = line.split()
                if "master" in fields[2] and "fail" not in fields[2]:
                    port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
                    found.append(by_port[port])
            return found
        raise RuntimeError("no live Redis Cluster node")

    def master_of(self, key: str) -> RedisServer:
        """The master that serves ``key``'s slot now."""
        slot = key_slot(key.encode())
        by_port = {node.port: node for node in self.nodes}
        for line in self.info(self.masters()[0], "nodes").splitlines():
            fields = line.split()
            if "master" not in fields[2] or "fail" in fields[2]:
                continue
            for served in fields[8:]:
                first, _, last = served.partition("-")
                if first.isdigit() and int(first) <= slot <= int(last or first):
                    return by_port[int(fields[1].split("@")[0].rsplit(":", 1)[1])]
        raise RuntimeError(f"no master serves slot {slot}")

    def wait_replaced(self, master: RedisServer, timeout: float = 30) -> None:
        """Wait until a replica took the place of ``master`` (down) and the others say ok."""
        deadline = time.monotonic() + timeout
        while True:
            masters = self.masters()
            if master not in masters and len(masters) == MASTERS:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("no replica took over from the failed master in time")
            time.sleep(0.05)
        self.wait_ok([node for node in self.nodes if node is not master])

    def rejoin(self, node: RedisServer) -> None:
        """Start a killed node again (it rejoins, as a replica of who replaced it)."""
        node.start(*self._options())
        self.wait_ok(self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                node.stop()


@contextlib.contextmanager
def running_redis_cluster(workdir: Path) -> Iterator[RedisCluster]:
    """A started :class:`RedisCluster`; every node stopped on exit."""
    cluster = RedisCluster(workdir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
