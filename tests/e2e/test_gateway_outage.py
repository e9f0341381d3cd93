"""A store outage at the edge, behind real nginx and Caddy (HYB-15).

A velvetrope node keeps its sessions in Redis, reached through a TCP relay the test can
cut. Once it is cut, the edge check answers ``503 store_unavailable`` even for a
session the node has just read (no near-cache answer), and the proxy gives the client a
JSON 503 with ``Retry-After`` and nothing to cache: nginx, whose ``auth_request`` turns
any other status of the check into a bare 500, maps it; Caddy passes the check's answer
on. When no node answers at all, nginx gives the same JSON 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.redis import delete_prefix, new_prefix, require_redis
from tests.support.server import COOKIE, Servers
from tests.support.services import PASSWORD
from velvetrope.integrations.edge import EdgeLayout, GuardedService
from velvetrope.lab.edge import CaddyEdge, Edge, NginxEdge

pytestmark = pytest.mark.e2e

EMAIL = "ann@example.com"
REDIS = ("127.0.0.1", 6379)


class Relay:
    """A loopback TCP relay to Redis; :meth:`cut` closes it and every connection."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(REDIS)
            with self._lock:
                self._open += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                target.sendall(chunk)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Redis is gone: no new connection, and the open ones end."""
        self.listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


@pytest.fixture
def prefix() -> Iterator[str]:
    require_redis()
    chosen = new_prefix()
    yield chosen
    asyncio.run(delete_prefix(chosen))


def start_edge(tmp_path: Path, proxy: str, nodes: tuple[str, ...]) -> Edge:
    layout = EdgeLayout(
        listen=f"127.0.0.1:{free_port()}",
        nodes=nodes,
        # Never reached: every request here is refused at the edge.
        services=(GuardedService("/api/orders/", "orders", f"127.0.0.1:{free_port()}"),),
    )
    return (NginxEdge if proxy == "nginx" else CaddyEdge)(tmp_path, layout)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "store_unavailable"
    assert response.headers["retry-after"] == "5"
    assert "no-store" in response.headers["cache-control"]
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("proxy", ["nginx", "caddy"])
def test_HYB_15_a_store_outage_is_a_json_503_at_the_edge(
    tmp_path: Path, servers: Servers, prefix: str, proxy: str
) -> None:
    relay = Relay()
    node = servers.start(
        tmp_path / "auth.db",
        env={
            "VELVETROPE_REDIS_URL": f"redis://127.0.0.1:{relay.port}/0",
            "VELVETROPE_REDIS_PREFIX": prefix,
            "VELVETROPE_GATEWAY_AUDIENCES": "orders",
            "VELVETROPE_PASSWORD_HASH_PROFILE": "owasp-minimum",
        },
    )
    assert node.base_url is not None
    edge = start_edge(tmp_path, proxy, (node.base_url.removeprefix("http://"),))
    try:
        with httpx.Client(base_url=node.base_url, timeout=10) as http:
            http.headers["Origin"] = node.base_url
            assert http.post(
                "/auth/register", json={"email": EMAIL, "password": PASSWORD}
            ).is_success
            login = http.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
            assert login.status_code == 200, login.text
            cookie = {"Cookie": f"{COOKIE}={login.cookies[COOKIE]}"}
            check = {**cookie, "X-Original-Method": "GET", "X-Velvetrope-Audience": "orders"}
            assert http.get("/auth/gateway", headers=check).status_code == 200
            assert http.get("/auth/me", headers=cookie).status_code == 200  # near-cached

            relay.cut()
            direct = http.get("/auth/gateway", headers=check)
            assert direct.status_code == 503, direct.text
            assert direct.headers["X-Velvetrope-Error"] == "store_unavailable"
        with httpx.Client(base_url=edge.url, timeout=10) as client:
            for accept in ("application/json", "text/html"):
                answer = client.get("/api/orders/ping", headers={**cookie, "Accept": accept})
                assert_unavailable(answer)
    finally:
        edge.stop()
        relay.cut()


def test_HYB_15_no_node_answering_is_a_json_503_at_nginx(tmp_path: Path) -> None:
    edge = start_edge(tmp_path, "nginx", (f"127.0.0.1:{free_port()}",))
    try:
        with httpx.Client(base_url=edge.url, timeout=10) as client:
            assert_unavailable(client.get("/api/orders/ping", headers={"Cookie": f"{COOKIE}=x"}))
    finally:
        edge.stop()
