"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import socket

__all__ = ["CLUSTER_BUS_OFFSET", "free_port"]

CLUSTER_BUS_OFFSET = 10_000
"""Redis Cluster listens on ``port + 10000`` too, so a server's port must leave room."""


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking), low
    enough that its cluster bus port (``port + 10000``) exists and is free as well, so
    the same helper serves a Redis cluster node, a PostgreSQL cluster and a URL that
    must not answer."""
    for _ in range(1000):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + CLUSTER_BUS_OFFSET <= 65535 and _bindable(port + CLUSTER_BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair (port, port + 10000) on 127.0.0.1")
