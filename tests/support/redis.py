"""Redis for the tests: the shared server, one fresh key prefix per store, cleaned up after;
and a ``redis-server`` of a test's own, for tests that stop it or run it as a cluster.

The server is ``redis://127.0.0.1:6379/0`` unless ``VELVETROPE_TEST_REDIS_URL`` names
another. When it cannot be reached the test is skipped with a message, and fails
instead when ``CI`` is set (:mod:`tests.support.require`): a backend never passes silently.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import redis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.support.ports import free_port
from tests.support.require import missing, require
from velvetrope.stores import SQLiteStores, Stores
from velvetrope.stores.composite import CompositeStores
from velvetrope.stores.redis import RedisStores

__all__ = [
    "REDIS_URL",
    "RedisServer",
    "RedisTestStores",
    "count_sessions",
    "delete_prefix",
    "dump_prefix",
    "new_prefix",
    "open_redis",
    "require_redis",
    "require_redis_server",
]

REDIS_URL = os.environ.get("VELVETROPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@functools.cache
def _unreachable(url: str) -> str | None:
    """Why Redis at ``url`` does not answer, or ``None`` if it does (asked once per run)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None


def require_redis(url: str = REDIS_URL) -> None:
    """Skip the calling test when Redis is unreachable; fail it instead under CI."""
    reason = _unreachable(url)
    if reason is not None:
        missing(
            f"Redis at {url} is not reachable ({reason}); start redis-server or set "
            "VELVETROPE_TEST_REDIS_URL"
        )


def require_redis_server() -> str:
    """The ``redis-server`` executable for a server of the test's own; skip (fail under CI)
    when it is not on PATH."""
    return require(
        shutil.which("redis-server"), "redis-server is not on PATH; install Redis to run this test"
    )


def new_prefix() -> str:
    """A key prefix no other test (or test run) uses."""
    return f"velvetrope-test:{uuid.uuid4().hex}:"


def _pattern(prefix: str, rest: str = "*") -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + rest


async def delete_prefix(prefix: str, url: str = REDIS_URL) -> int:
    """Delete every key starting with ``prefix`` (SCAN, then UNLINK); return the count."""
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=_pattern(prefix), count=1000)]
        for start in range(0, len(keys), 500):
            await client.unlink(*keys[start : start + 500])
        return len(keys)
    finally:
        await client.aclose()


async def dump_prefix(prefix: str, url: str = REDIS_URL) -> bytes:
    """Every key under ``prefix`` with its whole value, read back by type (a logical dump)."""
    client = Redis.from_url(url)
    parts: list[bytes] = []
    try:
        async for key in client.scan_iter(match=_pattern(prefix), count=1000):
            kind = await client.type(key)
            if kind == b"hash":
                value: object = await client.hgetall(key)
            elif kind == b"set":
                value = await client.smembers(key)
            elif kind == b"zset":
                value = await client.zrange(key, 0, -1, withscores=True)
            elif kind == b"stream":
                value = await client.xrange(key)
            else:
                value = await client.get(key)
            parts.append(key + b" " + repr(value).encode())
    finally:
        await client.aclose()
    return b"\n".join(parts)


def count_sessions(prefix: str, url: str = REDIS_URL) -> int:
    """How many sessions Redis holds under ``prefix`` (synchronous, for plain fixtures)."""
    client = redis.Redis.from_url(url)
    try:
        return sum(1 for _ in client.scan_iter(match=_pattern(prefix, "s:{*"), count=1000))
    finally:
        client.close()


class RedisTestStores(CompositeStores):
    """Users and keys in SQLite, the rest in Redis under a fresh prefix, deleted on close."""

    def __init__(self, primary: Stores, redis_stores: RedisStores) -> None:
        super().__init__(primary, redis_stores)
        self.redis = redis_stores

    async def dump(self) -> bytes:
        """What Redis holds for these stores (for SESS-03)."""
        return await dump_prefix(self.redis.prefix)

    async def aclose(self) -> None:
        try:
            await delete_prefix(self.redis.prefix)
        finally:
            await super().aclose()


def open_redis(tmp_path: Path) -> Stores:
    """Open Redis-backed stores for one test (call ``await stores.start()`` next)."""
    require_redis()
    return RedisTestStores(
        SQLiteStores(tmp_path / "velvetrope.db"),
        RedisStores(REDIS_URL, prefix=new_prefix()),
    )


class RedisServer:
    """A ``redis-server`` on a free port without persistence, stopped and started at will."""

    def __init__(self, executable: str, workdir: Path) -> None:
        self._executable = executable
        self._workdir = workdir
        self._log = workdir / "redis-server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._started = False
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *options: str) -> None:
        """Start the server and wait until it answers.

        Later starts reuse the port. The first may move to another free port, should
        some other process have taken the chosen one in the meantime.
        """
        for _ in range(3):
            if self._launch(options):
                self._started = True
                return
            if self._started:
                break
            self.port = free_port()
        log = self._log.read_text(errors="replace") if self._log.exists() else ""
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log[-2000:]}")

    def _launch(self, options: Sequence[str]) -> bool:
        self._process = subprocess.Popen(
            [
                self._executable,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self._workdir)),
                *("--save", "", "--appendonly", "no", "--logfile", str(self._log), *options),
            ]
        )
        deadline = time.monotonic() + 10
        while self._process.poll() is None and time.monotonic() < deadline:
            client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
            try:
                client.ping()
                return True
            except (RedisError, OSError):
                time.sleep(0.05)
            finally:
                client.close()
        self.stop()
        return False

    def stop(self) -> None:
        """Stop the server (SIGTERM) and wait for it to exit."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def kill(self) -> None:
        """Kill the server (SIGKILL: a crash, no shutdown save) and wait for it to exit."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None
