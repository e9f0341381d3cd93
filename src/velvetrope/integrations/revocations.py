"""Revocation pushes for services: a revoked session's minted tokens die at once.

Without this a service accepts an internal token until it expires (60 s by default).
With it, the service listens to the pushes velvetrope's nodes already exchange (Redis
pub/sub on ``<prefix>notify``, or PostgreSQL ``LISTEN`` on ``velvetrope``) and refuses,
from the moment the push arrives:

* every token of a session that ended (``gateway-revoked:session:<handle>``: sign-out,
  device sign-out, expiry, rotation) -- by ``sid``, whenever it was minted;
* every token of a user minted before a cut-off (``gateway-revoked:user:<id>@<ms>``:
  sign-out everywhere, password change, account disabled) -- by ``sub`` and ``iat``
  (to the millisecond, on the revoking node's clock).

Entries are forgotten once every token they could match has expired (the longest
internal lifetime plus the leeway), so memory stays bounded by the revocations of the
last few minutes. A lost push costs what a missing subscriber costs: the token lives
until its ``exp``; :attr:`RevokedSessions.connected` says whether the subscription is up.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import datetime, timedelta

from velvetrope.clock import Clock, system_clock
from velvetrope.core.gateway.claims import MAX_INTERNAL_TTL, InternalClaims
from velvetrope.core.gateway.service import parse_revocation

__all__ = ["RevokedSessions"]

_MAX_ENTRIES = 100_000


class RevokedSessions:
    """The sessions and users revoked recently, as pushed by velvetrope's nodes."""

    def __init__(
        self,
        *,
        remember: timedelta = MAX_INTERNAL_TTL + timedelta(minutes=1),
        now: Clock = system_clock,
    ) -> None:
        """Args:
        remember: How long an entry is kept (at least the longest token lifetime plus
            the leeway the verifier allows).
        now: The clock.
        """
        self._remember = remember
        self._now = now
        self._sessions: OrderedDict[str, datetime] = OrderedDict()
        self._users: dict[str, tuple[float, datetime]] = {}
        self.connected = False
        self.received = 0
        self._up = asyncio.Event()

    def is_revoked(self, claims: InternalClaims) -> bool:
        """Whether ``claims`` belong to a session or user revoked since they were minted."""
        if claims.sid in self._sessions:
            return True
        cutoff = self._users.get(claims.sub)
        return cutoff is not None and claims.issued_at.timestamp() < cutoff[0]

    def apply(self, topic: str) -> bool:
        """Take one pushed topic; return whether it was a gateway revocation."""
        found = parse_revocation(topic)
        if found is None:
            return False
        self.received += 1
        now = self._now()
        until = now + self._remember
        kind, name, cutoff = found
        if kind == "session":
            self._sessions[name] = until
            self._sessions.move_to_end(name)
        elif cutoff is not None:
            old = self._users.get(name)
            if old is None or cutoff > old[0]:
                self._users[name] = (cutoff, until)
        self._forget(now)
        return True

    def _forget(self, now: datetime) -> None:
        while self._sessions:
            handle, until = next(iter(self._sessions.items()))
            if until > now and len(self._sessions) <= _MAX_ENTRIES:
                break
            del self._sessions[handle]
        if len(self._users) > _MAX_ENTRIES or any(u <= now for _, u in self._users.values()):
            for user in [u for u, (_, until) in self._users.items() if until <= now]:
                del self._users[user]

    async def _on_push(self, topic: str) -> None:
        self.apply(topic)

    def _on_status(self, connected: bool) -> None:
        self.connected = connected
        if connected:
            self._up.set()
        else:
            self._up.clear()

    async def listen_redis(self, url: str, *, prefix: str = "velvetrope:") -> None:
        """Listen on velvetrope's Redis channel until cancelled (reconnects on its own).

        Args:
            url: The Redis velvetrope's nodes use (``VELVETROPE_REDIS_URL``).
            prefix: Their ``VELVETROPE_REDIS_PREFIX``.
        """
        from redis.asyncio import Redis  # noqa: PLC0415 - only services that subscribe need it

        from velvetrope.stores.redis.notifier import RedisNotifier  # noqa: PLC0415

        client = Redis.from_url(url, decode_responses=True)
        try:
            notifier = RedisNotifier(client, prefix + "notify")
            await notifier.listen(self._on_push, on_status=self._on_status)
        finally:
            await client.aclose()

    async def listen_postgres(self, dsn: str, *, schema: str | None = None) -> None:
        """Listen on velvetrope's PostgreSQL channel until cancelled (reconnects).

        Args:
            dsn: The database velvetrope's nodes use (``VELVETROPE_DATABASE_URL``).
            schema: Their schema, if not the default.
        """
        import asyncpg  # noqa: PLC0415 - only services that subscribe need it

        from velvetrope.stores.postgres._db import Database  # noqa: PLC0415
        from velvetrope.stores.postgres.notifier import (  # noqa: PLC0415
            PostgresNotifier,
            channel_name,
        )

        async def connect() -> asyncpg.Connection[asyncpg.Record]:
            return await asyncpg.connect(dsn, timeout=5)

        notifier = PostgresNotifier(
            Database(acquire_timeout=5), connect, channel=channel_name(schema)
        )
        await notifier.listen(self._on_push, on_status=self._on_status)

    async def wait_connected(self) -> None:
        """Return once the subscription is up (wrap it in ``asyncio.timeout``)."""
        await self._up.wait()
