"""The lab's private servers: redis-server, a PostgreSQL cluster, nginx.

Each runs from a temporary directory on a free loopback port, is started the first time
a cell asks for it (:class:`Services`) and stopped, with its directory deleted, when the
run ends, also on errors and Ctrl-C. None of them is ever reachable from outside
127.0.0.1. ``initdb`` refuses to run as root, so as root the cluster runs as the
``postgres`` user (through ``runuser``), as ``tests/support/postgres.py`` does.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "HOST",
    "Nginx",
    "PostgresCluster",
    "RedisServer",
    "ServiceUnavailable",
    "Services",
    "free_port",
    "process_cpu",
]

HOST = "127.0.0.1"  # the only address the lab serves on or sends traffic to
START_TIMEOUT = 30.0


class ServiceUnavailable(Exception):
    """A server the cell needs cannot be had here (its reason is the message)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceUnavailable(f"it exited: {_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
            return
        time.sleep(0.05)
    raise ServiceUnavailable(f"it did not listen within {START_TIMEOUT:.0f} s")


def _tail(path: Path) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-3:])
    except OSError:
        return ""


def stop_process(proc: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


class RedisServer:
    """A redis-server of the lab's own: no persistence, loopback only."""

    def __init__(self, scratch: Path) -> None:
        if shutil.which("redis-server") is None:
            raise ServiceUnavailable("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://{HOST}:{self.port}/0"
        log = scratch / "redis.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    HOST,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(scratch),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_port(self.port, self.proc, log)
        except ServiceUnavailable as exc:
            stop_process(self.proc)
            raise ServiceUnavailable(f"redis-server did not start ({exc})") from exc

    def cpu(self) -> float:
        """CPU seconds used so far."""
        return process_cpu(self.proc.pid)

    def stop(self) -> None:
        """Stop it."""
        stop_process(self.proc)


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


class PostgresCluster:
    """A PostgreSQL cluster of the lab's own (``initdb`` + ``pg_ctl``) in a temporary
    directory, trust authentication on 127.0.0.1 only."""

    def __init__(self) -> None:
        bin_dir = _pg_bin()
        if bin_dir is None or not (bin_dir / "initdb").exists():
            raise ServiceUnavailable("initdb/pg_ctl are not installed (apt-get install postgresql)")
        self._pg_ctl = str(bin_dir / "pg_ctl")
        self._as_owner: list[str] = []
        self._dir = Path(tempfile.mkdtemp(prefix="velvetrope-lab-pg-"))
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                owner = None
            if runuser is None or owner is None:
                shutil.rmtree(self._dir, ignore_errors=True)
                raise ServiceUnavailable(
                    "running as root without runuser or a postgres user, so initdb cannot run"
                )
            os.chown(self._dir, owner.pw_uid, owner.pw_gid)
            self._as_owner = [runuser, "-u", "postgres", "--"]
        self.port = free_port()
        self.url = f"postgresql://postgres@{HOST}:{self.port}/postgres"
        self._data = self._dir / "data"
        try:
            self._run(
                str(bin_dir / "initdb"),
                "-D",
                str(self._data),
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--no-sync",
                "--no-instructions",
            )
            options = f"-p {self.port} -c listen_addresses={HOST} -k {self._dir} -c fsync=off"
            self._run(
                self._pg_ctl,
                "start",
                "-D",
                str(self._data),
                "-l",
                str(self._dir / "log"),
                "-w",
                "-t",
                "30",
                "-o",
                options,
            )
        except ServiceUnavailable:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self._pid = self._postmaster_pid()

    def _run(self, *argv: str) -> None:
        try:
            done = subprocess.run(
                [*self._as_owner, *argv], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceUnavailable(f"{Path(argv[0]).name} failed: {exc}") from exc
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ServiceUnavailable(f"{Path(argv[0]).name} failed: {detail[0]}")

    def _postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self._data / "postmaster.pid").read_text().splitlines()[0])
        return None

    def cpu(self) -> float:
        """CPU seconds of the postmaster and its backends so far."""
        if self._pid is None:
            return 0.0
        total = process_cpu(self._pid)
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{self._pid}/task/{self._pid}/children").read_text().split()
            total += sum(process_cpu(int(c)) for c in children)
        return total

    def stop(self) -> None:
        """Stop the cluster and delete its directory."""
        with contextlib.suppress(ServiceUnavailable):
            self._run(self._pg_ctl, "stop", "-D", str(self._data), "-m", "immediate", "-w")
        shutil.rmtree(self._dir, ignore_errors=True)


class Nginx:
    """nginx as a round-robin reverse proxy on a free port in front of ``upstreams``."""

    def __init__(self, scratch: Path, upstreams: Sequence[int], *, port: int | None = None) -> None:
        if shutil.which("nginx") is None:
            raise ServiceUnavailable("nginx is not installed (apt-get install nginx)")
        self.port = port or free_port()
        root = scratch / f"nginx-{self.port}"
        root.mkdir()
        servers = "\n".join(f"    server {HOST}:{p} max_fails=0;" for p in upstreams)
        user = "user root;\n" if os.geteuid() == 0 else ""
        (root / "nginx.conf").write_text(
            f"""{user}worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  upstream nodes {{
{servers}
    keepalive 64;
  }}
  server {{
    listen {HOST}:{self.port};
    location / {{
      proxy_pass http://nodes;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
    }}
  }}
}}
"""
        )
        log = root / "stdout.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    "nginx",
                    "-p",
                    str(root),
                    "-e",
                    str(root / "error.log"),
                    "-c",
                    str(root / "nginx.conf"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_port(self.port, self.proc, root / "error.log")
        except ServiceUnavailable as exc:
            stop_process(self.proc)
            raise ServiceUnavailable(f"nginx did not start ({exc})") from exc

    def cpu(self) -> float:
        """CPU seconds of the master and its worker so far."""
        total = process_cpu(self.proc.pid)
        with contextlib.suppress(OSError):
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            total += sum(process_cpu(int(c)) for c in kids.split())
        return total

    def stop(self) -> None:
        """Stop it (SIGQUIT lets workers finish, SIGTERM is immediate)."""
        stop_process(self.proc)


class Services:
    """The shared stores of one run, started on first use and stopped by :meth:`close`.

    A service that failed to start is not tried again: every later cell gets the same
    reason.
    """

    def __init__(self, scratch: Path, cpu_meters: list[Callable[[], float]]) -> None:
        self._scratch = scratch
        self._meters = cpu_meters
        self._redis: RedisServer | ServiceUnavailable | None = None
        self._postgres: PostgresCluster | ServiceUnavailable | None = None

    def redis(self) -> RedisServer:
        """The run's redis-server.

        Raises:
            ServiceUnavailable: It cannot be started here.
        """
        if self._redis is None:
            try:
                self._redis = RedisServer(self._scratch)  # a child: the noise check sees it
            except ServiceUnavailable as exc:
                self._redis = exc
        if isinstance(self._redis, ServiceUnavailable):
            raise self._redis
        return self._redis

    def postgres(self) -> PostgresCluster:
        """The run's PostgreSQL cluster.

        Raises:
            ServiceUnavailable: It cannot be started here.
        """
        if self._postgres is None:
            try:
                self._postgres = PostgresCluster()
                self._meters.append(self._postgres.cpu)  # pg_ctl daemonizes it
            except ServiceUnavailable as exc:
                self._postgres = exc
        if isinstance(self._postgres, ServiceUnavailable):
            raise self._postgres
        return self._postgres

    def close(self) -> None:
        """Stop whatever was started."""
        for service in (self._redis, self._postgres):
            if isinstance(service, RedisServer | PostgresCluster):
                service.stop()
