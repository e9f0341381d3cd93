"""velvetrope nodes for the HTTP cells: the benchmark app under uvicorn on loopback.

A node is :mod:`velvetrope.lab.benchapp` (exactly what ``velvetrope serve`` runs, plus
``/bench/open`` and ``/bench/guarded``) in a process of its own on a free port of
127.0.0.1, with only the ``VELVETROPE_*`` variables the cell gives it. :func:`nodes`
starts one or more on the same stores and always stops them. :class:`Client` is a tiny
blocking HTTP client (keep-alive, bounded timeouts) for signing in and probing.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velvetrope.lab.features import NotLanded, workers
from velvetrope.lab.services import HOST, ServiceUnavailable, free_port, process_cpu, stop_process

__all__ = [
    "EMAIL",
    "PASSWORD",
    "Client",
    "Node",
    "Reply",
    "node_command",
    "nodes",
    "unverified_claims",
    "worker_args",
]

EMAIL = "lab@example.com"
PASSWORD = "velvetrope lab passphrase, not a secret"
STARTUP_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0
BASE_ENV = {
    "VELVETROPE_PASSWORD_HASH_PROFILE": "owasp-minimum",  # sign-ins are setup, not measured
    "VELVETROPE_REGISTRATIONS_PER_IP": "100000",
    "VELVETROPE_LOGIN_IP_FAILURES": "100000",
    "VELVETROPE_LOG_LEVEL": "warning",
    "VELVETROPE_ACCESS_TOKEN_TTL": "PT1H",  # longer than any run; changes no request's cost
}


def unverified_claims(token: str) -> dict[str, Any]:
    """A JWT's claims, decoded without any check: only for tokens the lab just got from
    velvetrope (to learn ``iss``, ``sub``, ``exp``), never to trust one."""
    part = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> list[str]:
        """Every value of header ``name``."""
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


class Client:
    """One keep-alive connection to ``origin`` (loopback only)."""

    def __init__(self, origin: str, *, user_agent: str = "velvetrope-lab") -> None:
        parts = urllib.parse.urlsplit(origin)
        if parts.hostname not in (HOST, "::1") or parts.port is None:
            raise ValueError(f"the lab only talks to loopback: {origin}")
        self.origin = origin
        self._host, self._port = parts.hostname, parts.port
        self._ua = user_agent
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Reply:
        """Send one request (reconnecting once if the connection was closed)."""
        sent = {"User-Agent": self._ua, **(headers or {})}
        body: bytes | None = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = json.dumps(json_body).encode()
            sent["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=REQUEST_TIMEOUT
                )
            try:
                self._conn.request(method, path, body=body, headers=sent)
                answer = self._conn.getresponse()
                data = answer.read()
                return Reply(answer.status, tuple(answer.getheaders()), data)
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def sign_up(self) -> None:
        """Create the lab's user (409 if it exists is fine)."""
        reply = self.request(
            "POST", "/auth/register", json_body={"email": EMAIL, "password": PASSWORD}
        )
        if reply.status not in (201, 409):
            raise ServiceUnavailable(f"sign-up answered {reply.status}: {reply.body[:120]!r}")

    def session_cookie(self, *, origin: str | None = None) -> tuple[str, str, str]:
        """Sign in; the session cookie's name and value, and the CSRF token.

        ``origin`` is the public origin the node expects (a proxy's), default its own.
        """
        reply = self.request(
            "POST",
            "/auth/login",
            json_body={"email": EMAIL, "password": PASSWORD},
            headers={"Origin": origin or self.origin},
        )
        if reply.status != 200:
            raise ServiceUnavailable(f"sign-in answered {reply.status}: {reply.body[:120]!r}")
        for value in reply.header("set-cookie"):
            name, _, rest = value.partition("=")
            if name.endswith("velvetrope-session"):
                return name, rest.split(";", 1)[0], str(reply.json()["csrf_token"])
        raise ServiceUnavailable("sign-in set no session cookie")

    def tokens(self) -> dict[str, Any]:
        """The password grant: access and refresh tokens."""
        reply = self.request(
            "POST",
            "/auth/token",
            form={"grant_type": "password", "username": EMAIL, "password": PASSWORD},
        )
        if reply.status != 200:
            raise ServiceUnavailable(f"token grant answered {reply.status}: {reply.body[:120]!r}")
        answer: dict[str, Any] = reply.json()
        return answer


@dataclass(frozen=True, slots=True)
class Node:
    """A running velvetrope process."""

    port: int
    pid: int
    env: Mapping[str, str]

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{HOST}:{self.port}"

    def cpu(self) -> float:
        """CPU seconds used so far."""
        return process_cpu(self.pid)

    def client(self, *, user_agent: str = "velvetrope-lab") -> Client:
        """A new connection to it."""
        return Client(self.origin, user_agent=user_agent)


def worker_args(count: int) -> list[str]:
    """The command-line arguments that run a node with ``count`` worker processes.

    ``velvetrope serve --workers N`` and uvicorn take the same flag; the nodes here run
    the benchmark app under uvicorn (:func:`node_command`), whose workers, like
    ``serve``'s, each build the app and open the stores themselves.

    Raises:
        NotLanded: ``serve --workers`` is not in this velvetrope.
    """
    feature = workers()
    if count == 1:
        return []
    if not feature.available:
        raise NotLanded(feature.reason)
    return ["--workers", str(count)]


def node_command(port: int, *, worker_count: int = 1) -> list[str]:
    """Uvicorn running the benchmark app as ``velvetrope serve`` would: ``worker_count``
    workers, no access log, proxy headers trusted from 127.0.0.1 only."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "velvetrope.lab.benchapp:build_app",
        "--factory",
        "--host",
        HOST,
        "--port",
        str(port),
        "--http",
        "httptools",
        "--lifespan",
        "on",
        "--log-level",
        "warning",
        "--no-access-log",
        "--no-server-header",
        "--proxy-headers",
        "--forwarded-allow-ips",
        HOST,
        *worker_args(worker_count),
    ]


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    client = Client(f"http://{HOST}:{port}")
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace").splitlines()[-3:]
                raise ServiceUnavailable(f"a velvetrope node exited: {' | '.join(tail)}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if client.request("GET", "/health").status == 200:
                    return
            time.sleep(0.05)
    finally:
        client.close()
    raise ServiceUnavailable(f"a velvetrope node did not answer within {STARTUP_TIMEOUT:.0f} s")


@contextlib.contextmanager
def nodes(
    count: int,
    env: Mapping[str, str],
    scratch: Path,
    *,
    public_origin: str | None = None,
    worker_count: int = 1,
) -> Iterator[list[Node]]:
    """Start ``count`` nodes on the same stores (``env``), each with ``worker_count``
    worker processes; stop them all on the way out.

    The first node starts alone, so it creates the schema and the signing key; the others
    then start together and find them. ``public_origin`` (a proxy's origin) names the
    tokens' issuer and the origin the CSRF checks expect.
    """
    procs: list[subprocess.Popen[bytes]] = []
    started: list[Node] = []

    def spawn() -> tuple[int, subprocess.Popen[bytes], Path]:
        port = free_port()
        node_env = {k: v for k, v in os.environ.items() if not k.startswith("VELVETROPE_")}
        node_env.update(BASE_ENV)
        node_env.update(env)
        node_env.update(VELVETROPE_HOST=HOST, VELVETROPE_PORT=str(port))
        if public_origin:
            node_env["VELVETROPE_PUBLIC_ORIGIN"] = public_origin
        log = scratch / f"node-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                node_command(port, worker_count=worker_count),
                cwd=scratch,
                env=node_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        procs.append(proc)
        return port, proc, log

    try:
        for batch in ([0], list(range(1, count))):
            spawned = [spawn() for _ in batch]
            for port, proc, log in spawned:
                _wait_healthy(port, proc, log)
                started.append(Node(port, proc.pid, dict(env)))
        yield started
    finally:
        for proc in procs:
            stop_process(proc)
