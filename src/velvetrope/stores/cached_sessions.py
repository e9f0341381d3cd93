"""A per-node near-cache of sessions, kept fresh by push between nodes.

With Redis or PostgreSQL every session lookup is a network round trip.
:class:`CachedSessionStore` wraps such a store and keeps the sessions this node read
recently, so most requests cost a dict lookup; every change is pushed to every node
over the stores' :class:`~velvetrope.stores.protocols.Notifier` (Redis pub/sub, or
PostgreSQL ``LISTEN``/``NOTIFY``), so a sign-out on one node is refused on the others
within the push latency (milliseconds).

What is cached: positive ``get`` results only (an unknown digest is asked every time,
so a flood of unknown IDs cannot displace anything), at most ``max_entries`` of them
in a segmented LRU (:class:`~velvetrope.stores.bounded.SegmentedCache`: sessions read
again are kept over sessions read once; O(1)). Every other
read (``list_for_user``) goes to the store.

Invalidation. Every write made through a ``CachedSessionStore`` (on any node, the CLI
included) evicts what it changed from this node's cache and then, once the store has
taken the write, publishes a topic that makes every node evict it too. A write evicts
locally even when it fails (it may have happened), and publishes even when it changed
nothing (an invalidation is idempotent, and covers an earlier write whose push was lost):

===============================  ==============================  =======================
topic                            published after                 evicts
===============================  ==============================  =======================
``session:<digest>``             ``touch``, ``bind``,            that session
                                 ``delete``, ``rotate`` (the old
                                 digest)
``user-sessions:<user id>``      ``delete_for_user``,            every session of the
                                 ``delete_by_handle``            user
``sessions-expired:<instant>``   ``purge_expired``               sessions whose absolute
                                                                 expiry is at or before
                                                                 the ISO 8601 instant
===============================  ==============================  =======================

A read that was in flight when an invalidation (or a reconnect) arrived is returned
but not cached: a per-node counter of invalidations, compared before and after the
read, sees to it.

Bounded staleness. Each entry is served for at most ``ttl`` (``VELVETROPE_SESSION_CACHE_TTL``,
1 s by default) after the read that filled it began, so a push that is lost
costs at most ``ttl``: a session ended on another node is refused here within ``ttl``
at worst, within milliseconds normally. ``ttl`` zero turns the cache off (every
``get`` goes to the store) while writes still publish their invalidations, for the
nodes that cache.

Fail safe. The cache is used only while this node's subscription is up: until the
first one is made, and from its loss until it is made again, every ``get`` goes to
the store and nothing is cached; every (re)subscription starts from an empty cache,
since messages may have been missed meanwhile. A store outage therefore still fails
closed: the push connection fails with the store, lookups go to the store and raise
:class:`~velvetrope.errors.StoreUnavailable` (503). Only when the outage is not seen
at once (a server that stops answering without closing the connection) are entries
read before it served, each for at most ``ttl``.

Deadlines are not the cache's business: a cached record carries its stored
timestamps, and :class:`~velvetrope.core.sessions.SessionService` checks the idle and
absolute deadlines on every request, hit or miss, so the cache never keeps an expired
session alive (and a touch evicts, so activity recorded elsewhere is seen).

Fresh reads. A check that must see a sign-out made on another node at once, whatever
the push latency (the hybrid gateway's edge check, before it hands out a token), runs
inside :func:`fresh_reads`: every ``get`` on that task then skips the cache and asks
the store, and its answer replaces the entry (a session found is kept, one gone is
dropped). A store outage then fails closed even when the cache holds the session.

Cost: one listening connection per node (its own subscription, besides the one the
web app holds for revocations) and one ``PUBLISH``/``NOTIFY`` per session write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from datetime import datetime, timedelta

from velvetrope.errors import ConfigurationError, StoreUnavailable
from velvetrope.stores.bounded import SegmentedCache
from velvetrope.stores.protocols import Notifier, SessionStore
from velvetrope.stores.records import SessionCacheStatus, SessionRecord

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_TTL",
    "CachedSessionStore",
    "SessionCacheStatus",
    "fresh_reads",
]

DEFAULT_TTL = timedelta(seconds=1)
"""How long an entry may be served without a fresh read: the bound on staleness."""

DEFAULT_MAX_ENTRIES = 10_000
"""Entries kept per node; with a TTL of seconds, only the sessions active right now."""

SESSION_TOPIC = "session:"
USER_TOPIC = "user-sessions:"
EXPIRED_TOPIC = "sessions-expired:"

_logger = logging.getLogger("velvetrope")
_fresh: ContextVar[bool] = ContextVar("velvetrope_fresh_session_reads", default=False)


@contextlib.contextmanager
def fresh_reads() -> Iterator[None]:
    """Within the block, session lookups on this task skip every near-cache and ask the
    store (see the module docstring, "Fresh reads"); a no-op for stores without one."""
    mark = _fresh.set(True)
    try:
        yield
    finally:
        _fresh.reset(mark)


class CachedSessionStore:
    """A :class:`~velvetrope.stores.protocols.SessionStore` with a per-node near-cache.

    See the module docstring for what is cached, the invalidation topics and the
    staleness bound. Call :meth:`start` to begin listening (the cache stays bypassed
    until then) and :meth:`aclose` to stop.

    Args:
        inner: The store that holds the sessions (the truth).
        notifier: The push channel every node of the deployment shares.
        ttl: The staleness bound; zero disables caching (writes still publish).
        max_entries: Most sessions kept.
        monotonic: Seconds on a monotonic clock (injected by tests).

    Raises:
        ConfigurationError: ``ttl`` is negative or ``max_entries`` is below 1.
    """

    def __init__(
        self,
        inner: SessionStore,
        notifier: Notifier,
        *,
        ttl: timedelta = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < timedelta(0):
            raise ConfigurationError("the session cache TTL cannot be negative")
        if max_entries < 1:
            raise ConfigurationError("the session cache needs room for at least one entry")
        self.inner = inner
        self._notifier = notifier
        self._ttl = ttl
        self._ttl_seconds = ttl.total_seconds()
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._entries: SegmentedCache[str, tuple[SessionRecord, float]] = SegmentedCache(
            max_entries
        )
        self._by_user: dict[str, set[str]] = {}
        self._generation = 0  # counts invalidations; a read spanning one is not cached
        self._connected = False
        self._subscribed = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._hits = 0
        self._misses = 0

    @property
    def enabled(self) -> bool:
        """Whether this node caches at all (a positive ``ttl``)."""
        return self._ttl_seconds > 0

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self, *, wait: timedelta = timedelta(seconds=2)) -> None:
        """Start listening for invalidations (a no-op when disabled or listening already).

        Returns once the subscription is made or after ``wait``, whichever comes first;
        the listener keeps trying in the background, and the cache is bypassed until
        it succeeds.
        """
        if not self.enabled or self._listener is not None:
            return
        self._listener = asyncio.create_task(
            self._notifier.listen(self._on_push, on_status=self._on_status),
            name="velvetrope-session-cache",
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait.total_seconds()):
                await self._subscribed.wait()

    async def aclose(self) -> None:
        """Stop listening and empty the cache."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        self._on_status(False)

    def status(self) -> SessionCacheStatus:
        """A snapshot of the cache's state and counters."""
        return SessionCacheStatus(
            enabled=self.enabled,
            push_connected=self._connected,
            max_staleness=self._ttl,
            entries=len(self._entries),
            max_entries=self._max_entries,
            hits=self._hits,
            misses=self._misses,
        )

    # --- the hot path ------------------------------------------------------------------

    async def get(self, id_digest: str) -> SessionRecord | None:
        """Return the session from the cache if fresh, else from the store; always from
        the store inside :func:`fresh_reads`.

        Raises:
            StoreUnavailable: The lookup went to the store and it did not answer.
        """
        if not self._connected:
            self._misses += 1
            return await self.inner.get(id_digest)
        now = self._monotonic()
        if _fresh.get():
            self._drop(id_digest)  # whatever the store says replaces it
            entry = None
        else:
            entry = self._entries.get(id_digest)
        if entry is not None:
            if now - entry[1] < self._ttl_seconds:
                self._hits += 1
                return entry[0]
            self._drop(id_digest)
        self._misses += 1
        generation = self._generation
        record = await self.inner.get(id_digest)
        if record is not None and generation == self._generation:
            self._remember(record, now)
        return record

    # --- writes: through to the store, then evict here and everywhere -------------------

    async def add(self, session: SessionRecord) -> None:
        """Insert a new session (nothing to invalidate: nobody has read it)."""
        await self.inner.add(session)

    async def touch(self, id_digest: str, last_seen_at: datetime) -> bool:
        """Record activity; every node re-reads the session on its next lookup."""
        try:
            touched = await self.inner.touch(id_digest, last_seen_at)
        finally:
            self._evict(id_digest)
        await self._publish(SESSION_TOPIC + id_digest)
        return touched

    async def bind(self, id_digest: str, device_key: str) -> bool:
        """Bind the session to a device key; every node re-reads it on its next lookup."""
        try:
            bound = await self.inner.bind(id_digest, device_key)
        finally:
            self._evict(id_digest)
        await self._publish(SESSION_TOPIC + id_digest)
        return bound

    async def rotate(self, old_digest: str, new: SessionRecord) -> bool:
        """Replace the session; the old digest is evicted everywhere."""
        try:
            rotated = await self.inner.rotate(old_digest, new)
        finally:
            self._evict(old_digest)
        await self._publish(SESSION_TOPIC + old_digest)
        return rotated

    async def delete(self, id_digest: str) -> bool:
        """Delete one session and evict it everywhere."""
        try:
            deleted = await self.inner.delete(id_digest)
        finally:
            self._evict(id_digest)
        await self._publish(SESSION_TOPIC + id_digest)
        return deleted

    async def delete_by_handle(self, user_id: str, handle: str) -> bool:
        """Delete the user's session with this handle; the user's sessions are evicted."""
        try:
            deleted = await self.inner.delete_by_handle(user_id, handle)
        finally:
            self._evict_user(user_id)
        await self._publish(USER_TOPIC + user_id)
        return deleted

    async def list_for_user(self, user_id: str) -> Sequence[SessionRecord]:
        """Return the user's sessions, from the store."""
        return await self.inner.list_for_user(user_id)

    async def delete_for_user(self, user_id: str, *, keep: str | None = None) -> int:
        """Delete the user's sessions but ``keep``; all of them are evicted everywhere."""
        try:
            deleted = await self.inner.delete_for_user(user_id, keep=keep)
        finally:
            self._evict_user(user_id)
        await self._publish(USER_TOPIC + user_id)
        return deleted

    async def purge_expired(self, now: datetime) -> int:
        """Delete sessions past their absolute expiry, and evict them everywhere."""
        try:
            purged = await self.inner.purge_expired(now)
        finally:
            self._evict_expired(now)
        await self._publish(EXPIRED_TOPIC + now.isoformat())
        return purged

    async def _publish(self, topic: str) -> None:
        try:
            await self._notifier.publish(topic)
        except StoreUnavailable as exc:
            # The write is stored; other nodes serve their copy for at most the TTL.
            _logger.warning(
                "session invalidation push failed (%s); other nodes catch up within %s s",
                exc.detail,
                self._ttl_seconds,
            )

    # --- push ----------------------------------------------------------------------------

    async def _on_push(self, topic: str) -> None:
        """Evict what a topic names; other topics (revocations, keys) are not ours."""
        if topic.startswith(SESSION_TOPIC):
            self._evict(topic.removeprefix(SESSION_TOPIC))
        elif topic.startswith(USER_TOPIC):
            self._evict_user(topic.removeprefix(USER_TOPIC))
        elif topic.startswith(EXPIRED_TOPIC):
            try:
                instant = datetime.fromisoformat(topic.removeprefix(EXPIRED_TOPIC))
            except ValueError:
                instant = None
            if instant is None or instant.tzinfo is None:
                self._clear()  # unreadable: forget everything rather than guess
            else:
                self._evict_expired(instant)

    def _on_status(self, connected: bool) -> None:
        # Either way the cache starts over: messages may have been missed.
        self._clear()
        self._connected = connected
        if connected:
            self._subscribed.set()
        else:
            self._subscribed.clear()

    # --- the table -----------------------------------------------------------------------

    def _remember(self, record: SessionRecord, read_at: float) -> None:
        digest = record.id_digest
        evicted = self._entries.put(digest, (record, read_at))
        self._by_user.setdefault(record.user_id, set()).add(digest)
        for oldest, (old, _) in evicted:
            self._unindex(old.user_id, oldest)

    def _drop(self, digest: str) -> None:
        entry = self._entries.pop(digest)
        if entry is not None:
            self._unindex(entry[0].user_id, digest)

    def _unindex(self, user_id: str, digest: str) -> None:
        digests = self._by_user.get(user_id)
        if digests is not None:
            digests.discard(digest)
            if not digests:
                del self._by_user[user_id]

    def _evict(self, digest: str) -> None:
        self._generation += 1
        self._drop(digest)

    def _evict_user(self, user_id: str) -> None:
        self._generation += 1
        for digest in self._by_user.pop(user_id, ()):
            self._entries.pop(digest)

    def _evict_expired(self, now: datetime) -> None:
        self._generation += 1
        for digest in [d for d, (r, _) in self._entries.items() if r.expires_at <= now]:
            self._drop(digest)

    def _clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._by_user.clear()
