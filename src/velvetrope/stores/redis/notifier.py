"""Push between nodes over Redis pub/sub: one channel, each message the name of a topic.

Best effort, as the :class:`~velvetrope.stores.protocols.Notifier` contract says: the
data is in Redis before its topic is published, and every node also polls, so a
message lost during an outage costs latency, never correctness.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from redis.asyncio.cluster import RedisCluster

from velvetrope.errors import StoreUnavailable
from velvetrope.stores.redis._base import OUTAGES, guard, outage
from velvetrope.stores.redis._client import Client

__all__ = ["RedisNotifier"]

_logger = logging.getLogger("velvetrope")


class RedisNotifier:
    """Publishes and listens on the channel ``<prefix>notify``.

    Args:
        client: The stores' client; listening holds one connection of its pool.
        channel: The channel name (channels are not keys: no hash tag, and on a
            cluster a ``PUBLISH`` reaches every node).
        retry_every: How long to wait before subscribing again after an outage.
    """

    def __init__(
        self, client: Client, channel: str, *, retry_every: timedelta = timedelta(seconds=1)
    ) -> None:
        self._client = client
        self.channel = channel
        self._retry_every = retry_every.total_seconds()

    async def publish(self, topic: str) -> None:
        """Tell every listening node (this one included) that ``topic`` changed.

        Raises:
            StoreUnavailable: Redis did not take the message.
        """
        with guard():
            await self._client.publish(self.channel, topic)

    async def listen(
        self,
        on_change: Callable[[str], Awaitable[None]],
        *,
        on_status: Callable[[bool], None] | None = None,
    ) -> None:
        """Call ``on_change(topic)`` for every message until cancelled.

        Subscribes again on its own after an outage. A ``StoreUnavailable`` raised by
        ``on_change`` (the re-read failed) is logged; polling catches up later.
        ``on_status(True)`` follows every confirmation of the subscription, including
        the one after redis-py quietly reconnected a dropped connection (messages
        published meanwhile were lost); ``on_status(False)`` follows a failure, and
        the end of listening.
        """
        status = on_status or _ignore
        failing = False
        try:
            while True:
                try:
                    async with self._client.pubsub() as pubsub:
                        await pubsub.subscribe(self.channel)
                        if failing:
                            _logger.warning("Redis notifications resumed on %s", self.channel)
                            failing = False
                        async for message in pubsub.listen():
                            if message["type"] == "message":
                                await self._deliver(on_change, str(message["data"]))
                            elif message["type"] == "subscribe":
                                status(True)
                except OUTAGES as exc:
                    outage(exc)  # raises what is a bug, not an outage
                    status(False)
                    if not failing:
                        _logger.warning(
                            "Redis notifications interrupted (%s); retrying", type(exc).__name__
                        )
                        failing = True
                    await asyncio.sleep(self._retry_every)
                    await self._relearn_topology()
        finally:
            status(False)

    async def _relearn_topology(self) -> None:
        """On a cluster, ask it again which node serves the channel's slot.

        A new subscription goes to the node the client's slot table names. Commands
        refresh that table when they fail, but a node with no traffic sends none, and
        would keep subscribing to a master that a replica has replaced.
        """
        if not isinstance(self._client, RedisCluster):
            return
        try:
            await self._client.nodes_manager.initialize()
        except OUTAGES as exc:
            outage(exc)  # still down: the next subscription fails and we come back

    @staticmethod
    async def _deliver(on_change: Callable[[str], Awaitable[None]], topic: str) -> None:
        try:
            await on_change(topic)
        except StoreUnavailable as exc:
            _logger.warning("re-reading %s after a notification failed: %s", topic, exc.detail)


def _ignore(_connected: bool) -> None:
    """The ``on_status`` of a listener that does not ask for one."""
