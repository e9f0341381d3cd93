"""Push between nodes with PostgreSQL ``LISTEN``/``NOTIFY``.

``publish`` sends ``NOTIFY`` through the pool; ``listen`` holds one connection of its
own (outside the pool, so it never takes a slot from queries) and calls back for every
notification. Best effort, as the protocol allows: a notification sent while a node's
listener is reconnecting is lost, and that node's polling catches up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import asyncpg

from velvetrope.errors import StoreUnavailable
from velvetrope.stores.postgres._db import FAILURES, Database, PostgresTable
from velvetrope.stores.postgres.schema import lock_key

if TYPE_CHECKING:
    from asyncpg.connection import Connection

__all__ = ["PostgresNotifier", "channel_name"]

_logger = logging.getLogger("velvetrope")
_MAX_CHANNEL = 63  # NAMEDATALEN - 1: PostgreSQL refuses longer channel names


def channel_name(schema: str | None) -> str:
    """The ``NOTIFY`` channel of the installation in ``schema`` (channels are per database)."""
    name = "velvetrope" if schema is None else f"velvetrope.{schema}"
    if len(name) <= _MAX_CHANNEL:
        return name
    return f"velvetrope.{lock_key('notify', schema) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


class PostgresNotifier(PostgresTable):
    """Publishes and listens on one ``NOTIFY`` channel.

    Args:
        db: The stores' pool (for ``publish``).
        connect: Opens the listening connection (same server and settings as the pool).
        channel: The channel name; see :func:`channel_name`.
        retry_every: Seconds between attempts to listen again after an outage.
        heartbeat: Seconds of silence after which the listener checks its connection
            (a dead peer without a reset is found this way).
    """

    def __init__(
        self,
        db: Database,
        connect: Callable[[], Awaitable[Connection[asyncpg.Record]]],
        *,
        channel: str,
        retry_every: float = 1.0,
        heartbeat: float = 15.0,
    ) -> None:
        super().__init__(db)
        self._connect = connect
        self.channel = channel
        self._retry_every = retry_every
        self._heartbeat = heartbeat

    async def publish(self, topic: str) -> None:
        """Tell every listening node (this one included) that ``topic`` changed.

        Raises:
            StoreUnavailable: PostgreSQL did not take the message.
        """
        await self._one("SELECT pg_notify($1, $2)", self.channel, topic)

    async def listen(
        self,
        on_change: Callable[[str], Awaitable[None]],
        *,
        on_status: Callable[[bool], None] | None = None,
    ) -> None:
        """Call ``on_change(topic)`` for every notification until cancelled.

        Listens again on its own after an outage. A ``StoreUnavailable`` raised by
        ``on_change`` (the re-read failed) is logged; polling catches up later.
        ``on_status(True)`` follows each ``LISTEN``; ``on_status(False)`` follows the
        loss of the listening connection, and the end of listening.
        """
        status = on_status or _ignore
        failing = False
        try:
            while True:
                try:
                    conn = await self._connect()
                except FAILURES as exc:
                    failing = self._interrupted(exc, failing)
                    await asyncio.sleep(self._retry_every)
                    continue
                try:
                    await self._serve(conn, on_change, status, resumed=failing)
                except FAILURES as exc:
                    failing = self._interrupted(exc, failing=False)
                finally:
                    status(False)
                    conn.terminate()  # synchronous: safe while being cancelled
                await asyncio.sleep(self._retry_every)
        finally:
            status(False)

    def _interrupted(self, exc: BaseException, failing: bool) -> bool:
        if not failing:
            _logger.warning(
                "PostgreSQL notifications interrupted (%s); retrying", type(exc).__name__
            )
        return True

    async def _serve(
        self,
        conn: Connection[asyncpg.Record],
        on_change: Callable[[str], Awaitable[None]],
        status: Callable[[bool], None],
        *,
        resumed: bool,
    ) -> None:
        """Deliver notifications from ``conn`` until it fails (then raise)."""
        inbox: asyncio.Queue[str | None] = asyncio.Queue()

        def received(_conn: object, _pid: int, _channel: str, payload: object) -> None:
            inbox.put_nowait(str(payload))

        def closed(_conn: object) -> None:
            inbox.put_nowait(None)  # wakes the loop below at once

        conn.add_termination_listener(closed)
        await conn.add_listener(self.channel, received)
        status(True)
        if resumed:
            _logger.warning("PostgreSQL notifications resumed on %s", self.channel)
        while True:
            try:
                async with asyncio.timeout(self._heartbeat):
                    topic = await inbox.get()
            except TimeoutError:
                await conn.execute("SELECT 1", timeout=self._heartbeat)  # raises if dead
                continue
            if topic is None:
                raise asyncpg.ConnectionDoesNotExistError("the listening connection closed")
            await self._deliver(on_change, topic)

    @staticmethod
    async def _deliver(on_change: Callable[[str], Awaitable[None]], topic: str) -> None:
        try:
            await on_change(topic)
        except StoreUnavailable as exc:
            _logger.warning("re-reading %s after a notification failed: %s", topic, exc.detail)


def _ignore(_connected: bool) -> None:
    """The ``on_status`` of a listener that does not ask for one."""
