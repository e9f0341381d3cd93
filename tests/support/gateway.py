"""The hybrid gateway end to end: velvetrope nodes, the example service, nginx or Caddy.

:func:`gateway_stack` starts two ``velvetrope serve`` nodes on a fresh PostgreSQL
database and a Redis prefix of the test's own, the example service
(``examples/orders_service.py``, subscribed to the nodes' revocation pushes), and the
edge (the configuration shipped in ``deploy/``, with these ports), all on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.redis import REDIS_URL
from tests.support.server import ServerProcess, Servers, child_env
from velvetrope.integrations.edge import EdgeLayout, GuardedService
from velvetrope.lab.edge import CaddyEdge, Edge, NginxEdge
from velvetrope.lab.services import ServiceUnavailable

__all__ = ["AUDIENCES", "EXAMPLE_SERVICE", "GatewayStack", "gateway_stack", "node_env"]

EXAMPLE_SERVICE = Path(__file__).resolve().parents[2] / "examples" / "orders_service.py"
AUDIENCES = "orders,billing"


def node_env(origin: str, database_url: str, prefix: str) -> dict[str, str]:
    """A node behind the edge: the edge's origin, shared stores, the gateway on."""
    return {
        "VELVETROPE_PUBLIC_ORIGIN": origin,
        "VELVETROPE_REDIS_URL": REDIS_URL,
        "VELVETROPE_REDIS_PREFIX": prefix,
        "VELVETROPE_GATEWAY_AUDIENCES": AUDIENCES,
        "VELVETROPE_PASSWORD_HASH_PROFILE": "owasp-minimum",
        "VELVETROPE_LOGIN_IP_FAILURES": "100000",
        "VELVETROPE_DATABASE_URL": database_url,
    }


@dataclass
class GatewayStack:
    """What :func:`gateway_stack` started."""

    origin: str
    nodes: list[ServerProcess]
    service_url: str
    edge: Edge

    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, base_url: str) -> httpx.Client:
        """A client that keeps no cookies (tests send them explicitly), closed at the end."""
        made = httpx.Client(base_url=base_url, timeout=10, follow_redirects=False)
        self.clients.append(made)
        return made

    def edge_client(self) -> httpx.Client:
        """:meth:`client` of the edge."""
        return self.client(self.origin)


def _start_service(tmp_path: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (tmp_path / f"orders-{port}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE_SERVICE), "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=child_env(env),
    )
    log.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail((tmp_path / f"orders-{port}.log").read_text())
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        time.sleep(0.05)
    proc.kill()
    pytest.fail(
        "the example service did not start: " + (tmp_path / f"orders-{port}.log").read_text()
    )


def _wait_listening(base_url: str) -> None:
    """Until the node hears the other nodes' pushes (``/ready``: gateway.push_connected)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            ready = httpx.get(f"{base_url}/ready", timeout=2).json()
            if ready["gateway"]["push_connected"]:
                return
        time.sleep(0.05)
    pytest.fail(f"{base_url} never subscribed to the pushes")


@contextlib.contextmanager
def gateway_stack(
    tmp_path: Path,
    servers: Servers,
    *,
    database_url: str,
    prefix: str,
    proxy: Literal["nginx", "caddy"],
    settings: Mapping[str, str] | None = None,
) -> Iterator[GatewayStack]:
    """Two nodes (with ``settings``, more ``VELVETROPE_*`` for them), the example service
    and the edge; everything stops afterwards."""
    edge_port = free_port()
    origin = f"http://127.0.0.1:{edge_port}"
    env = {**node_env(origin, database_url, prefix), **(settings or {})}
    nodes = [servers.spawn("--port", "0", env=env) for _ in range(2)]
    for node in nodes:
        node.start()
    for node in nodes:
        _wait_listening(str(node.base_url))
    node_ports = [str(n.base_url).rsplit(":", 1)[1] for n in nodes]
    service_port = free_port()
    service = _start_service(
        tmp_path,
        service_port,
        {
            "ORDERS_JWKS_URL": f"{nodes[0].base_url}/auth/gateway/jwks.json",
            "ORDERS_ISSUER": origin,
            "ORDERS_REDIS_URL": REDIS_URL,
            "ORDERS_REDIS_PREFIX": prefix,
        },
    )
    layout = EdgeLayout(
        listen=f"127.0.0.1:{edge_port}",
        nodes=tuple(f"127.0.0.1:{p}" for p in node_ports),
        services=(GuardedService("/api/orders/", "orders", f"127.0.0.1:{service_port}"),),
    )
    try:
        edge: Edge = (NginxEdge if proxy == "nginx" else CaddyEdge)(tmp_path, layout)
    except ServiceUnavailable as exc:
        service.kill()
        service.wait()
        pytest.fail(str(exc))
    stack = GatewayStack(origin, nodes, f"http://127.0.0.1:{service_port}", edge)
    try:
        yield stack
    finally:
        for client in stack.clients:
            client.close()
        edge.stop()
        service.terminate()
        service.wait(10)
