"""Shared plumbing for the Redis stores: key names, timestamps, TTLs, failing closed."""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis
from redis.exceptions import RedisClusterException, RedisError

from velvetrope.errors import StoreUnavailable
from velvetrope.stores.redis._client import AnyPipeline, Client
from velvetrope.stores.redis.scripts import Scripts

__all__ = [
    "FAILURES",
    "OUTAGES",
    "PURGE_BATCH",
    "Keys",
    "RedisTable",
    "at",
    "expiry_member",
    "guard",
    "outage",
    "parse_expiry_member",
    "ttl_ms",
    "us",
]

FAILURES = (RedisError, RedisClusterException, OSError)
"""What a broken or missing server raises (``OSError`` covers ``TimeoutError``). A
cluster client also raises :class:`RedisClusterException`, which is no ``RedisError``,
while a failover leaves slots unserved ("slot not covered", "no targets")."""

OUTAGES = (*FAILURES, AttributeError, RuntimeError)
"""What to catch around a Redis call before :func:`outage` sorts it: :data:`FAILURES`
and the two ways a connection that a concurrent disconnect closed mid-command fails."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def us(instant: datetime) -> int:
    """Return ``instant`` as integer microseconds since the epoch (exact, unlike floats)."""
    return (instant - _EPOCH) // _MICROSECOND


def at(micros: str | int) -> datetime:
    """Return the aware UTC instant ``micros`` microseconds after the epoch."""
    return _EPOCH + timedelta(microseconds=int(micros))


def ttl_ms(expires_at: datetime, *written: datetime) -> int:
    """Return a TTL in milliseconds that ends a key at ``expires_at`` on core's clock.

    The TTL is the time from the write to the deadline, both as core measured them
    (``written``: the record's instants, the latest being core's "now" at the write),
    never the Redis server's clock, so a skewed server cannot end a record early and
    a test clock frozen in the past works. The key then ends when core's clock reaches
    ``expires_at`` (later only by the write's own latency), never earlier.
    """
    remaining = (expires_at - max(written)) / timedelta(milliseconds=1)
    return max(math.ceil(remaining), 1)


_CLIENT_DIR = os.path.dirname(redis.__file__) + os.sep  # redis-py's own frames


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Turn any Redis or socket failure into StoreUnavailable: fail closed, no details."""
    try:
        yield
    except OUTAGES as exc:
        raise outage(exc) from exc


def outage(exc: Exception) -> StoreUnavailable:
    """The :class:`StoreUnavailable` that ``exc``, raised by a Redis call, stands for.

    For a ``try`` of its own (the per-request read, the pub/sub loop) where
    :func:`guard` would cost a context manager: ``except OUTAGES as exc: raise
    outage(exc) from exc``.

    Raises:
        Exception: ``exc`` itself when it is no outage but a bug (ours or the
            client's), so it stays visible as one.
    """
    if isinstance(exc, FAILURES):
        return StoreUnavailable(f"Redis error: {type(exc).__name__}")
    if isinstance(exc, AttributeError) and _raised_in_client(exc):
        # redis-py's connection can lose its writer to a concurrent disconnect while a
        # command is being sent (seen during a Cluster failover: "'NoneType' object has
        # no attribute 'writelines'"). Raised inside the client, it is an outage like any
        # other; raised in our own code, it stays the bug it is.
        return StoreUnavailable("Redis error: connection lost mid-command")
    if (
        isinstance(exc, RuntimeError)
        and "closed" in str(exc)
        and _raised_in_client(exc, anywhere=True)
    ):
        # The same race one layer down: uvloop refuses a write on a transport the
        # disconnect already closed ("unable to perform operation on <TCPTransport
        # closed=True ...>; the handler is closed"), through redis-py's send.
        return StoreUnavailable("Redis error: connection lost mid-command")
    raise exc


def _raised_in_client(exc: BaseException, *, anywhere: bool = False) -> bool:
    """Whether ``exc`` was raised by a frame of the redis package itself (with
    ``anywhere``: whether a redis frame is on its way up, raised below it)."""
    tb = exc.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    if anywhere:
        return any(name.startswith(_CLIENT_DIR) for name in frames)
    return bool(frames) and frames[-1].startswith(_CLIENT_DIR)


class Keys:
    """Every key name; see the layout table in :mod:`velvetrope.stores.redis`.

    The part in braces is the hash tag: it alone picks the Cluster slot, so keys
    that one script touches together carry the same tag.
    """

    __slots__ = (
        "_p",
        "failures_by_last",
        "family_expiry",
        "feed_expiry",
        "feed_log",
        "feed_sequence",
        "session_expiry",
    )

    def __init__(self, prefix: str) -> None:
        self._p = prefix
        self.session_expiry = prefix + "s:exp"
        self.failures_by_last = prefix + "t:last"
        self.family_expiry = prefix + "f:exp"
        self.feed_sequence = prefix + "rv:{feed}:seq"
        self.feed_log = prefix + "rv:{feed}:log"
        self.feed_expiry = prefix + "rv:{feed}:exp"

    def session(self, digest: str) -> str:
        """The hash holding one session."""
        return f"{self._p}s:{{{digest}}}"

    def user_sessions(self, user_id: str) -> str:
        """The set of the digests of one user's sessions."""
        return f"{self._p}u:{{{user_id}}}:s"

    def failures(self, key: str) -> str:
        """The hash counting failed sign-ins under one throttle key."""
        return f"{self._p}t:{{{key}}}"

    def one_time(self, key: str) -> str:
        """The hash holding one single-use value (``v``) and its deadline (``e``)."""
        return f"{self._p}o:{{{key}}}"

    def family(self, family_id: str) -> str:
        """The hash holding one refresh family and the digests it issued."""
        return f"{self._p}f:{{{family_id}}}"

    def refresh_digest(self, digest: str) -> str:
        """The string naming the family that issued one refresh-token digest."""
        return f"{self._p}r:{{{digest}}}"

    def user_families(self, user_id: str) -> str:
        """The set of the ids of one user's unrevoked families."""
        return f"{self._p}u:{{{user_id}}}:f"


def expiry_member(entry_id: str, user_id: str) -> str:
    """The member naming an entry and its owner in a global expiry index.

    The owner rides along so a purge can clean the per-user index even when the
    entry itself is already gone (ended by its TTL).
    """
    return json.dumps([entry_id, user_id], separators=(",", ":"))


def parse_expiry_member(member: str) -> tuple[str, str]:
    """Return ``(entry_id, user_id)`` from :func:`expiry_member`'s output."""
    entry_id, user_id = json.loads(member)
    return str(entry_id), str(user_id)


PURGE_BATCH = 500
"""Expired entries handled per round trip by the purge jobs."""


class RedisTable:
    """A store over the shared client, its key names and its scripts."""

    def __init__(self, client: Client, keys: Keys, scripts: Scripts) -> None:
        self._client = client
        self._keys = keys
        self._scripts = scripts

    async def _purge_index(
        self,
        index: str,
        cutoff: int,
        purge: Callable[[str, AnyPipeline], Awaitable[None]],
        forget: Callable[[AnyPipeline, str, str, Any], bool],
    ) -> int:
        """Purge the entries of the expiry ``index`` due by ``cutoff``, a batch at a time.

        ``purge(entry_id, pipe)`` queues the script that deletes one entry if it is
        still due; ``forget(pipe, entry_id, user_id, outcome)`` queues the clean-up of
        its indexes and says whether this purge deleted it.
        """
        purged = 0
        with guard():
            while True:
                members = cast(
                    "list[str]",
                    await self._client.zrangebyscore(
                        index, "-inf", cutoff, start=0, num=PURGE_BATCH
                    ),
                )
                if not members:
                    break
                entries = [parse_expiry_member(m) for m in members]
                async with self._client.pipeline(transaction=False) as pipe:
                    for entry_id, _ in entries:
                        await purge(entry_id, pipe)
                    outcomes = await pipe.execute()
                async with self._client.pipeline(transaction=False) as pipe:
                    for (entry_id, user_id), outcome in zip(entries, outcomes, strict=True):
                        purged += forget(pipe, entry_id, user_id, outcome)
                    pipe.zrem(index, *members)
                    await pipe.execute()
                if len(members) < PURGE_BATCH:
                    break
        return purged
