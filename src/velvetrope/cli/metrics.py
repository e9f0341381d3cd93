"""The metrics port of ``velvetrope serve``: ``/metrics`` for Prometheus, on its own port.

Off unless ``VELVETROPE_METRICS_PORT`` is set; it listens on
``VELVETROPE_METRICS_HOST`` (127.0.0.1 by default), never on the public port, so metrics
are not public by accident. The server process (with ``--workers``, the supervisor)
serves it from a thread; every worker writes its values into prometheus-client's
multiprocess directory (a fresh temporary folder, removed on exit, unless
``PROMETHEUS_MULTIPROC_DIR`` names one), and a scrape adds them up.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

__all__ = ["MetricsServer"]

_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


@dataclass
class MetricsServer:
    """A running metrics port."""

    directory: str
    owned: bool
    server: WSGIServer
    thread: threading.Thread

    @classmethod
    def start(cls, host: str, port: int) -> MetricsServer:
        """Choose the multiprocess directory, then serve ``/metrics`` on ``host:port``.

        Must run before anything imports ``prometheus_client`` in this process (it reads
        the directory when it is first imported).

        Raises:
            OSError: The port cannot be bound.
        """
        given = os.environ.get(_DIR_VARIABLE)
        directory = given or tempfile.mkdtemp(prefix="velvetrope-metrics-")
        os.environ[_DIR_VARIABLE] = directory  # the workers inherit it
        from prometheus_client import CollectorRegistry, start_http_server  # noqa: PLC0415
        from prometheus_client.multiprocess import MultiProcessCollector  # noqa: PLC0415

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        try:
            server, thread = start_http_server(port, addr=host, registry=registry)
        except OSError:
            if not given:
                shutil.rmtree(directory, ignore_errors=True)
            raise
        return cls(directory, not given, server, thread)

    def close(self) -> None:
        """Stop serving and remove the directory if this server made it."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
        if self.owned:
            shutil.rmtree(self.directory, ignore_errors=True)
