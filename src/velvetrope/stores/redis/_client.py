"""The client a Redis URL names: one server (``redis://``, ``rediss://``, ``unix://``) or a
Redis Cluster (``redis+cluster://``, ``rediss+cluster://``).

A cluster URL names one or more of its nodes, comma-separated
(``redis+cluster://[user:password@]host1:port1,host2:port2``); the client learns the
rest, and every slot's owner, from whichever answers, and learns them again when a
replica takes over from a failed master. Every key the stores touch together in one
command or script carries one hash tag (see :mod:`velvetrope.stores.redis`), so
each lands in one slot.

Pipelines queue ``DEL`` and ``UNLINK`` with ``execute_command``: a cluster pipeline's
``delete`` and ``unlink`` methods run at once (split by slot) instead of queueing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TypeAlias
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from velvetrope.errors import ConfigurationError

__all__ = ["CLUSTER_SCHEMES", "AnyPipeline", "Client", "open_client", "queue_script"]

Client: TypeAlias = Redis | RedisCluster
"""What the stores talk to: one server or a cluster (the same commands)."""

AnyPipeline: TypeAlias = Pipeline | ClusterPipeline
"""A pipeline of either client."""

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""Cluster URL schemes and the plain scheme each stands for."""


def open_client(url: str, *, connect_timeout: timedelta, timeout: timedelta) -> Client:
    """A client for ``url`` that connects lazily, times out, and retries a dropped
    connection once at once.

    Raises:
        ConfigurationError: The URL cannot be parsed (the message never repeats it:
            it may hold a password).
    """
    scheme = url.partition("://")[0].lower()
    try:
        if scheme in CLUSTER_SCHEMES:
            return _cluster(url, scheme, connect_timeout, timeout)
        return Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=connect_timeout.total_seconds(),
            socket_timeout=timeout.total_seconds(),
            retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
        )
    except ValueError as exc:
        raise ConfigurationError(f"the Redis URL is not valid: {exc}") from None


def _cluster(url: str, scheme: str, connect_timeout: timedelta, timeout: timedelta) -> RedisCluster:
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    if parts.path not in ("", "/", "/0"):
        raise ValueError("a Redis Cluster has only database 0")
    nodes = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            raise ValueError("name each cluster node as host:port")
        nodes.append(ClusterNode(name.strip("[]"), int(port)))
    return RedisCluster(
        startup_nodes=nodes,
        username=unquote(username) or None,
        password=unquote(password) or None,
        ssl=CLUSTER_SCHEMES[scheme] == "rediss",
        # A failed master: ask again at once, once, on a fresh view of the slots; past
        # that the call fails (closed) and the next one tries the cluster again.
        retry=Retry(NoBackoff(), retries=1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        decode_responses=True,
        socket_connect_timeout=connect_timeout.total_seconds(),
        socket_timeout=timeout.total_seconds(),
    )


async def queue_script(
    pipe: AnyPipeline, script: AsyncScript, keys: Sequence[str], args: Sequence[str | int]
) -> None:
    """Queue ``script`` in ``pipe``.

    On one server, ``EVALSHA`` (the pipeline loads the script first if the server
    lost it). A cluster's pipeline cannot do that on each node it sends to, so it
    sends the script's text (``EVAL``): these pipelines belong to purges and
    "sign out everywhere", never to the per-request path.
    """
    if isinstance(pipe, ClusterPipeline):
        pipe.eval(str(script.script), len(keys), *keys, *args)  # registered as str
    else:
        await script(keys=keys, args=args, client=pipe)
