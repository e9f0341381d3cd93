"""Run ``velvetrope serve`` as a real process and talk to it over real HTTP.

The server's stdout and stderr are drained by reader threads (so a chatty server
never blocks on a full pipe) and kept for failure messages. Every process a test
starts through :class:`Servers` is stopped, and its pipes closed, by
:meth:`Servers.stop_all` (the ``servers`` fixture of ``tests/e2e`` calls it).
"""

from __future__ import annotations

import http.cookiejar
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.support.cookies import SetCookie
from tests.support.services import PASSWORD

__all__ = [
    "COOKIE",
    "HTTP_TIMEOUT",
    "STOP_TIMEOUT",
    "WORKERS_STARTUP_TIMEOUT",
    "Refusal",
    "ServerExited",
    "ServerProcess",
    "Servers",
    "SessionId",
    "auth",
    "child_env",
    "login",
    "register",
    "session_cookie",
    "velvetrope_command",
]

COOKIE = "__Host-velvetrope-session"

STARTUP_TIMEOUT = 20.0
WORKERS_STARTUP_TIMEOUT = 90.0  # serve --workers: every worker imports everything
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0

LISTENING = re.compile(r"velvetrope listening on (?:https?)://(\[[^\]]+\]|[^\s:]+):(\d+) \((.+)\)")

# Variables that would change what the child does behind the test's back.
_SCRUBBED = ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "PYTHONWARNINGS")


def child_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``VELVETROPE_*`` variable, plus ``overrides``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("VELVETROPE_") and key not in _SCRUBBED
    }
    env.update(overrides or {})
    return env


def velvetrope_command(*args: str) -> list[str]:
    """``python -m velvetrope ARGS`` with this interpreter (works in any virtualenv)."""
    return [sys.executable, "-m", "velvetrope", *args]


class ServerExited(Exception):
    """The server process ended before it reported that it was listening."""


@dataclass
class ServerProcess:
    """One ``velvetrope serve`` child process and everything it printed."""

    args: tuple[str, ...]
    env: dict[str, str]
    cwd: Path
    process: subprocess.Popen[str] = field(init=False)
    stdout_lines: list[str] = field(default_factory=list, init=False)
    stderr_lines: list[str] = field(default_factory=list, init=False)
    base_url: str | None = field(default=None, init=False)
    listening_host: str | None = field(default=None, init=False)
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue, init=False)
    _readers: list[threading.Thread] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.process = subprocess.Popen(
            velvetrope_command("serve", *self.args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=self.env,
            cwd=self.cwd,
        )
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._readers = [
            threading.Thread(
                target=self._drain, args=(self.process.stdout, self.stdout_lines, True)
            ),
            threading.Thread(
                target=self._drain, args=(self.process.stderr, self.stderr_lines, False)
            ),
        ]
        for reader in self._readers:
            reader.start()

    def _drain(self, stream: IO[str], lines: list[str], announce: bool) -> None:
        for line in stream:
            lines.append(line)
            if announce:
                self._lines.put(line)
        if announce:
            self._lines.put(None)

    @property
    def stdout(self) -> str:
        return "".join(self.stdout_lines)

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def describe(self) -> str:
        """Exit status and output, for failure messages."""
        return (
            f"command: {' '.join(velvetrope_command('serve', *self.args))}\n"
            f"exit code: {self.process.poll()}\n"
            f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"
        )

    def _next_line(self, deadline: float, waiting_for: str) -> str:
        """The next stdout line, waiting until ``deadline`` at most.

        Raises:
            ServerExited: The process ended first (its output is in the message).
        """
        try:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"no {waiting_for!r} line on stdout in time\n{self.describe()}")
        if line is None:
            self.finish()
            raise ServerExited(self.describe())
        return line

    def expect_line(self, text: str, timeout: float = STARTUP_TIMEOUT) -> str:
        """Read stdout until a line containing ``text``; fail if none comes."""
        deadline = time.monotonic() + timeout
        try:
            while text not in (line := self._next_line(deadline, text)):
                pass
        except ServerExited as exc:
            pytest.fail(f"exited before printing {text!r}\n{exc}")
        return line

    def wait_listening(self, timeout: float = STARTUP_TIMEOUT) -> str:
        """Read stdout until the ``listening on`` line; return the base URL.

        Raises:
            ServerExited: The process ended first (its output is in the message).
        """
        deadline = time.monotonic() + timeout
        while True:
            line = self._next_line(deadline, "velvetrope listening on")
            match = LISTENING.search(line)
            if match:
                host, port, _ = match.groups()
                self.listening_host = host
                connect_to = "127.0.0.1" if host == "0.0.0.0" else host  # noqa: S104
                scheme = "https" if "listening on https://" in line else "http"
                self.base_url = f"{scheme}://{connect_to}:{port}"
                return self.base_url

    def start(self, timeout: float = STARTUP_TIMEOUT) -> str:
        """Wait until listening; fail the test with the output if it never does."""
        try:
            return self.wait_listening(timeout)
        except ServerExited as exc:
            pytest.fail(f"velvetrope serve exited before listening\n{exc}")

    def client(self) -> httpx.Client:
        """An HTTP client for this server that never stores or sends cookies by itself.

        (httpx would not send a ``Secure`` cookie over ``http://`` anyway; tests send
        the session cookie explicitly with :func:`auth`.)
        """
        assert self.base_url is not None, "call start() first"
        jar = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        return httpx.Client(
            base_url=self.base_url,
            timeout=HTTP_TIMEOUT,
            cookies=jar,
            headers={"Origin": self.base_url},  # as a same-origin page would
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send ``sig`` (if still running), wait for the exit, close the pipes; return the code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self.finish()
        return self.process.returncode

    def finish(self) -> None:
        """After the process ended: collect its output and close the pipes."""
        self.process.wait(STOP_TIMEOUT)
        for reader in self._readers:
            reader.join(STOP_TIMEOUT)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None and not stream.closed:
                stream.close()


@dataclass(frozen=True)
class Refusal:
    """How a server that refused to start ended."""

    returncode: int
    stdout: str
    stderr: str


class Servers:
    """Starts velvetrope servers for one test and stops every one of them afterwards."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._started: list[ServerProcess] = []

    def spawn(self, *args: str, env: Mapping[str, str] | None = None) -> ServerProcess:
        """Start ``velvetrope serve ARGS`` (cwd: the test's tmp dir, no ``.env``)."""
        server = ServerProcess(args, child_env(env), self.workdir)
        self._started.append(server)
        return server

    def start(
        self,
        database: Path,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = STARTUP_TIMEOUT,
        port: int = 0,
    ) -> ServerProcess:
        """Start a server on ``port`` (0: a free loopback port the kernel picks) and
        ``database``; wait until it listens (``timeout``: longer for ``--workers``, whose
        processes each import everything)."""
        server = self.spawn("--port", str(port), "--database", str(database), *args, env=env)
        server.start(timeout)
        return server

    def refused(self, *args: str, env: Mapping[str, str] | None = None) -> Refusal:
        """Start ``velvetrope serve ARGS`` expecting it to refuse; fail if it listens."""
        server = self.spawn(*args, env=env)
        try:
            url = server.wait_listening()
        except ServerExited:
            return Refusal(server.process.returncode, server.stdout, server.stderr)
        pytest.fail(f"velvetrope started on {url} instead of refusing\n{server.describe()}")

    def stop_all(self) -> None:
        for server in self._started:
            server.stop()


# --- talking to a server --------------------------------------------------------------


def session_cookie(response: httpx.Response) -> SetCookie:
    """The session cookie the response sets (exactly one)."""
    cookies = [SetCookie.parse(h) for h in response.headers.get_list("set-cookie")]
    [cookie] = [c for c in cookies if c.name == COOKIE]
    return cookie


class SessionId(str):
    """A session ID as :func:`login` returns it, with the CSRF token of that sign-in."""

    __slots__ = ("csrf",)
    csrf: str


def auth(secret: str) -> dict[str, str]:
    """Headers that present ``secret`` as the session cookie (and its CSRF token, if known)."""
    headers = {"Cookie": f"{COOKIE}={secret}"}
    if isinstance(secret, SessionId):
        headers["X-CSRF-Token"] = secret.csrf
    return headers


def register(client: httpx.Client, email: str, password: str = PASSWORD) -> None:
    response = client.post("/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text


def login(
    client: httpx.Client, email: str, password: str = PASSWORD, *, user_agent: str = "e2e"
) -> str:
    """Sign in with a JSON body; return the new session ID from ``Set-Cookie``, carrying
    the ``csrf_token`` of the response (which :func:`auth` sends along)."""
    response = client.post(
        "/auth/login",
        json={"email": email, "password": password},
        headers={"User-Agent": user_agent},
    )
    assert response.status_code == 200, response.text
    session = SessionId(session_cookie(response).value)
    session.csrf = response.json()["csrf_token"]
    return session
