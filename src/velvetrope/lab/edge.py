"""The hybrid gateway's edge as real processes: nginx or Caddy on a loopback port.

Both run the configuration :mod:`velvetrope.integrations.edge` renders (the one shipped
in ``deploy/``), in the foreground, from a temporary directory, on 127.0.0.1 only.
Used by ``benchmarks/gateway.py``, the lab's hybrid cell and the end-to-end tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from velvetrope.integrations.edge import EdgeLayout, caddyfile, nginx_conf
from velvetrope.lab.services import ServiceUnavailable, _wait_for_port, stop_process

__all__ = ["CaddyEdge", "Edge", "NginxEdge"]


class Edge:
    """A running proxy; :meth:`stop` ends it."""

    proc: subprocess.Popen[bytes]
    port: int
    root: Path

    @property
    def url(self) -> str:
        """The edge's origin."""
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """What the proxy logged (for failure messages)."""
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop it."""
        stop_process(self.proc)

    def _start(self, command: list[str], name: str, env: dict[str, str] | None = None) -> None:
        with (self.root / "error.log").open("ab") as out:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        try:
            _wait_for_port(self.port, self.proc, self.root / "error.log")
        except ServiceUnavailable as exc:
            stop_process(self.proc)
            raise ServiceUnavailable(f"{name} did not start ({exc}): {self.log()}") from exc


class NginxEdge(Edge):
    """nginx (Debian's) running :func:`~velvetrope.integrations.edge.nginx_conf`."""

    def __init__(self, scratch: Path, layout: EdgeLayout) -> None:
        if shutil.which("nginx") is None:
            raise ServiceUnavailable("nginx is not installed (apt-get install nginx)")
        self.port = int(layout.listen.rsplit(":", 1)[1])
        self.root = scratch / f"nginx-edge-{self.port}"
        self.root.mkdir(parents=True)
        user = "root" if os.geteuid() == 0 else None
        (self.root / "nginx.conf").write_text(nginx_conf(layout, str(self.root), user=user))
        conf = str(self.root / "nginx.conf")
        self._start(
            ["nginx", "-p", str(self.root), "-e", str(self.root / "error.log"), "-c", conf],
            "nginx",
        )


class CaddyEdge(Edge):
    """Caddy (Debian's) running :func:`~velvetrope.integrations.edge.caddyfile`."""

    def __init__(self, scratch: Path, layout: EdgeLayout) -> None:
        if shutil.which("caddy") is None:
            raise ServiceUnavailable("caddy is not installed (apt-get install caddy)")
        self.port = int(layout.listen.rsplit(":", 1)[1])
        self.root = scratch / f"caddy-edge-{self.port}"
        self.root.mkdir(parents=True)
        (self.root / "Caddyfile").write_text(caddyfile(layout))
        home = self.root / "home"
        home.mkdir()
        # Caddy keeps state under $HOME / $XDG_*: keep it in the scratch directory.
        env = {
            **os.environ,
            "HOME": str(home),
            "XDG_DATA_HOME": str(home),
            "XDG_CONFIG_HOME": str(home),
        }
        self._start(
            ["caddy", "run", "--adapter", "caddyfile", "--config", str(self.root / "Caddyfile")],
            "caddy",
            env,
        )
