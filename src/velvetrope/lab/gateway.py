"""A hybrid gateway to measure: velvetrope nodes on shared stores behind nginx.

:func:`gateway_edge` starts ``count`` nodes (the benchmark app, as ``velvetrope serve``
runs it) on one SQLite file and one Redis prefix, with the gateway on for the audience
``orders``, and nginx in front with the configuration shipped in ``deploy/`` (its
ports). The guarded location goes to ``upstream`` (by default the first node's
``/bench/`` routes: ``/api/orders/open`` is ``/bench/open``). Shared by the lab's hybrid
cell and ``benchmarks/gateway.py``; loopback only.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from velvetrope.integrations.edge import EdgeLayout, GuardedService
from velvetrope.lab.edge import NginxEdge
from velvetrope.lab.servers import Client, Node, nodes
from velvetrope.lab.services import HOST, ServiceUnavailable, free_port

__all__ = ["AUDIENCE", "GUARDED", "GatewayEdge", "gateway_edge"]

AUDIENCE = "orders"
GUARDED = "/api/orders/"


@dataclass
class GatewayEdge:
    """The running edge: its origin, the nodes behind it, nginx."""

    origin: str
    nodes: list[Node]
    nginx: NginxEdge
    redis_url: str
    redis_prefix: str

    def client(self) -> Client:
        """A keep-alive connection to the edge."""
        return Client(self.origin)

    def minted(self) -> int:
        """Internal tokens signed so far, every node together (from ``/ready``)."""
        total = 0
        for node in self.nodes:
            client = node.client()
            try:
                reply = client.request("GET", "/ready")
            finally:
                client.close()
            if reply.status != 200:
                raise ServiceUnavailable(f"/ready answered {reply.status}")
            total += int(reply.json()["gateway"]["minted"])
        return total

    def sign_in(self, client: Client) -> tuple[str, str]:
        """Sign in through the edge; the ``Cookie`` header value and the CSRF token."""
        name, value, csrf = client.session_cookie(origin=self.origin)
        return f"{name}={value}", csrf


@contextlib.contextmanager
def gateway_edge(
    scratch: Path,
    redis_url: str,
    *,
    count: int = 2,
    cached: bool = True,
    ttl: timedelta | None = None,
    upstream: str | None = None,
    rewrite: str = "/bench/",
    direct: str | None = None,
) -> Iterator[GatewayEdge]:
    """Start the nodes and nginx; stop them all on the way out.

    Args:
        scratch: A directory of the run's own.
        redis_url: The Redis the nodes share (sessions, the push channel).
        count: How many nodes.
        cached: The mint cache on (the default) or off.
        ttl: The internal tokens' lifetime (default: velvetrope's, 60 s).
        upstream: The guarded service's ``host:port`` (default: the first node).
        rewrite: What the guarded prefix becomes at the service.
        direct: An unguarded path to the same service, to compare against.

    Raises:
        ServiceUnavailable: A node or nginx did not start.
    """
    port = free_port()
    origin = f"http://{HOST}:{port}"
    prefix = f"vr-gw-{secrets.token_hex(4)}:"
    root = scratch / f"gateway-{port}"
    root.mkdir(parents=True)
    env = {
        "VELVETROPE_DATABASE_URL": f"sqlite:///{root / 'gateway.db'}",
        "VELVETROPE_REDIS_URL": redis_url,
        "VELVETROPE_REDIS_PREFIX": prefix,
        "VELVETROPE_GATEWAY_AUDIENCES": AUDIENCE,
        "VELVETROPE_GATEWAY_MINT_CACHE": "10000" if cached else "0",
    }
    if ttl is not None:
        env["VELVETROPE_GATEWAY_TOKEN_TTL"] = str(ttl.total_seconds())
    with nodes(count, env, root, public_origin=origin) as started:
        service = GuardedService(
            GUARDED, AUDIENCE, upstream or f"{HOST}:{started[0].port}", rewrite=rewrite
        )
        layout = EdgeLayout(
            listen=f"{HOST}:{port}",
            nodes=tuple(f"{HOST}:{n.port}" for n in started),
            services=(service,),
            direct=direct,
        )
        nginx = NginxEdge(root, layout)
        try:
            yield GatewayEdge(origin, started, nginx, redis_url, prefix)
        finally:
            nginx.stop()
