"""The per-node session near-cache: push invalidation, bounded staleness, failing safe.

Cross-node tests run two nodes (two store instances, each with its own connections,
cache and listener) on one real server: Redis under a fresh key prefix, or PostgreSQL
in a schema of its own. Their caches keep entries for :data:`LONG` (a minute), far
longer than any wait here, so an eviction seen within :data:`WITHIN` came from a push.
Interleavings no server can force (a read overtaken by an invalidation) and the
disabled cache run on the memory store and an in-process bus.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.stores.test_contract import T0, session
from tests.support.postgres import ADMIN_URL, DisposableStores, require_postgres
from tests.support.redis import (
    REDIS_URL,
    RedisServer,
    delete_prefix,
    new_prefix,
    require_redis,
    require_redis_server,
)
from velvetrope import FrozenClock
from velvetrope.core.sessions import SessionPolicy, SessionService
from velvetrope.errors import ConfigurationError, SessionExpired, StoreUnavailable
from velvetrope.stores import CachedSessionStore, MemoryStores
from velvetrope.stores.postgres import PostgresStores
from velvetrope.stores.protocols import Notifier
from velvetrope.stores.records import SessionRecord
from velvetrope.stores.redis import RedisStores

LONG = timedelta(minutes=1)  # the nodes' TTL: only a push evicts within a test
WITHIN = 5.0  # seconds a push (or a resubscription) may take to show


class Node(Protocol):
    """One app node's stores: Redis or PostgreSQL."""

    @property
    def sessions(self) -> CachedSessionStore: ...

    @property
    def notifier(self) -> Notifier: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class FakeMonotonic:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def eventually(
    read: Callable[[], Awaitable[object]], expected: object, within: float = WITHIN
) -> None:
    """Poll ``read`` until it returns ``expected``; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while (got := await read()) != expected:
        if time.monotonic() > deadline:
            pytest.fail(f"still {got!r} after {within} s, expected {expected!r}")
        await asyncio.sleep(0.005)


async def push_connected(node: Node) -> bool:
    """Whether the node's cache is listening (and so in use)."""
    return node.sessions.status().push_connected


async def cached(node: Node, record: SessionRecord) -> None:
    """Read ``record`` on ``node`` until a lookup is answered from its cache."""
    assert node.sessions.status().push_connected
    hits = node.sessions.status().hits
    assert await node.sessions.get(record.id_digest) == record
    assert await node.sessions.get(record.id_digest) == record
    assert node.sessions.status().hits > hits


# --- two nodes on one real server ---------------------------------------------------------


@pytest.fixture(params=["redis", "postgres"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Node, Node]]:
    """Nodes A and B sharing one server (and one deployment: prefix or schema)."""
    a: Node
    b: Node
    if request.param == "redis":
        require_redis()
        prefix = new_prefix()
        a = RedisStores(REDIS_URL, prefix=prefix, session_cache_ttl=LONG)
        b = RedisStores(REDIS_URL, prefix=prefix, session_cache_ttl=LONG)
        try:
            await a.start()
            await b.start()
            yield a, b
        finally:
            await b.aclose()
            await a.aclose()
            await delete_prefix(prefix)
    else:
        require_postgres()
        a = first = DisposableStores(session_cache_ttl=LONG)
        b = PostgresStores(ADMIN_URL, schema=first.schema, max_size=2, session_cache_ttl=LONG)
        try:
            await first.start()
            await b.start()
            yield a, b
        finally:
            await b.aclose()
            await first.aclose()


@dataclasses.dataclass(frozen=True)
class Write:
    """A write on node B and what node A must read afterwards."""

    name: str
    run: Callable[[CachedSessionStore, SessionRecord], Awaitable[object]]
    after: Callable[[SessionRecord], SessionRecord | None] = lambda _record: None


LATER = T0 + timedelta(minutes=5)
WRITES = [
    Write("delete", lambda s, r: s.delete(r.id_digest)),
    Write("rotate", lambda s, r: s.rotate(r.id_digest, session(r.user_id, 9))),
    Write("delete_by_handle", lambda s, r: s.delete_by_handle(r.user_id, r.handle)),
    Write("delete_for_user", lambda s, r: s.delete_for_user(r.user_id)),
    Write("purge_expired", lambda s, r: s.purge_expired(r.expires_at)),
    Write(
        "touch",
        lambda s, r: s.touch(r.id_digest, LATER),
        lambda r: dataclasses.replace(r, last_seen_at=LATER),
    ),
]


@pytest.mark.parametrize("write", WRITES, ids=[w.name for w in WRITES])
async def test_a_write_on_one_node_reaches_the_others_cache_by_push(
    pair: tuple[Node, Node], write: Write
) -> None:
    a, b = pair
    record = session("u1")
    await a.sessions.add(record)
    await cached(a, record)
    await write.run(b.sessions, record)
    await eventually(lambda: a.sessions.get(record.id_digest), write.after(record))


async def test_logout_everywhere_evicts_the_users_sessions_and_no_one_elses(
    pair: tuple[Node, Node],
) -> None:
    a, b = pair
    mine, also_mine, theirs = session("u1", 1), session("u1", 2), session("u2", 3)
    for record in (mine, also_mine, theirs):
        await a.sessions.add(record)
        await cached(a, record)
    assert await b.sessions.delete_for_user("u1") == 2
    await eventually(lambda: a.sessions.get(mine.id_digest), None)
    assert await a.sessions.get(also_mine.id_digest) is None
    hits = a.sessions.status().hits
    assert await a.sessions.get(theirs.id_digest) == theirs
    assert a.sessions.status().hits == hits + 1  # still cached


async def test_without_a_push_a_cached_session_outlives_its_row_until_the_ttl(
    pair: tuple[Node, Node],
) -> None:
    """The staleness a lost push costs, and its bound: ``ttl`` on an injected clock."""
    a, _ = pair
    clock = FakeMonotonic()
    cache = CachedSessionStore(
        a.sessions.inner, a.notifier, ttl=timedelta(seconds=2), monotonic=clock
    )
    await cache.start()
    try:
        record = session("u1")
        await cache.add(record)
        assert await cache.get(record.id_digest) == record
        await cache.inner.delete(record.id_digest)  # behind the cache: nothing published
        clock.now += 1.5
        assert await cache.get(record.id_digest) == record
        clock.now += 0.5  # two seconds after the read began
        assert await cache.get(record.id_digest) is None
    finally:
        await cache.aclose()


async def test_the_cache_holds_at_most_max_entries_and_drops_the_least_recently_used(
    pair: tuple[Node, Node],
) -> None:
    a, _ = pair
    cache = CachedSessionStore(a.sessions.inner, a.notifier, ttl=LONG, max_entries=3)
    await cache.start()
    try:
        records = [session(f"u{n}", n) for n in range(5)]
        for record in records:
            await cache.add(record)
        for record in records[:3]:
            await cache.get(record.id_digest)
        await cache.get(records[0].id_digest)  # 0 is now the most recently used
        for record in records[3:]:
            await cache.get(record.id_digest)  # evicts 1, then 2
        assert cache.status().entries == 3
        for record in records:
            await cache.inner.delete(record.id_digest)  # behind the cache
        assert [await cache.get(r.id_digest) for r in records] == [
            records[0],
            None,
            None,
            records[3],
            records[4],
        ]
    finally:
        await cache.aclose()


async def test_before_listening_every_lookup_goes_to_the_store(pair: tuple[Node, Node]) -> None:
    a, _ = pair
    cache = CachedSessionStore(a.sessions.inner, a.notifier, ttl=LONG)  # never started
    record = session("u1")
    await cache.add(record)
    assert await cache.get(record.id_digest) == record
    await cache.inner.delete(record.id_digest)
    assert await cache.get(record.id_digest) is None
    assert cache.status().push_connected is False
    assert cache.status().entries == 0


# --- the push channel goes away -----------------------------------------------------------


async def test_postgres_a_lost_listening_connection_empties_the_cache() -> None:
    require_postgres()
    node = DisposableStores(session_cache_ttl=LONG)
    await node.start()
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        record = session("u1")
        await node.sessions.add(record)
        await cached(node, record)
        await node.sessions.inner.delete(record.id_digest)  # behind the cache
        assert await node.sessions.get(record.id_digest) == record
        ended = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE query = 'LISTEN \"' || $1 || '\"'",
            node.notifier.channel,
        )
        assert ended == 1
        await eventually(lambda: node.sessions.get(record.id_digest), None)
        await eventually(lambda: push_connected(node), True)
    finally:
        await admin.close()
        await node.aclose()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A ``redis-server`` of the test's own (started), to kill connections or stop."""
    server = RedisServer(require_redis_server(), tmp_path)
    server.start()
    yield server
    server.stop()


async def test_redis_a_dropped_subscription_empties_the_cache(own_redis: RedisServer) -> None:
    node = RedisStores(own_redis.url, session_cache_ttl=LONG)
    await node.start()
    admin = Redis.from_url(own_redis.url)
    try:
        record = session("u1")
        await node.sessions.add(record)
        await cached(node, record)
        await node.sessions.inner.delete(record.id_digest)  # behind the cache
        assert await node.sessions.get(record.id_digest) == record
        assert await admin.client_kill_filter(_type="pubsub") == 1
        # redis-py reconnects and subscribes again; the confirmation empties the cache.
        await eventually(lambda: node.sessions.get(record.id_digest), None)
    finally:
        await admin.aclose()
        await node.aclose()


async def test_redis_outage_bypasses_the_cache_and_fails_closed(own_redis: RedisServer) -> None:
    node = RedisStores(own_redis.url, session_cache_ttl=LONG, timeout=timedelta(seconds=1))
    await node.start()
    try:
        record = session("u1")
        await node.sessions.add(record)
        await cached(node, record)
        own_redis.stop()
        await eventually(lambda: push_connected(node), False)
        with pytest.raises(StoreUnavailable):
            await node.sessions.get(record.id_digest)  # cached, but not served
        own_redis.start()  # no persistence: the session is gone
        await eventually(lambda: push_connected(node), True)
        assert await node.sessions.get(record.id_digest) is None
    finally:
        await node.aclose()


# --- interleavings, on the memory store and an in-process bus ------------------------------


class Bus:
    """A :class:`Notifier` in process: ``publish`` delivers to every listener at once."""

    def __init__(self) -> None:
        self.published: list[str] = []
        self.failing = False
        self._listeners: list[Callable[[str], Awaitable[None]]] = []
        self._statuses: list[Callable[[bool], None]] = []

    async def publish(self, topic: str) -> None:
        if self.failing:
            raise StoreUnavailable("the bus is down")
        self.published.append(topic)
        for deliver in list(self._listeners):
            await deliver(topic)

    async def listen(
        self,
        on_change: Callable[[str], Awaitable[None]],
        *,
        on_status: Callable[[bool], None] | None = None,
    ) -> None:
        status = on_status or (lambda _connected: None)
        self._listeners.append(on_change)
        self._statuses.append(status)
        status(True)
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            self._listeners.remove(on_change)
            self._statuses.remove(status)
            status(False)

    def connection(self, up: bool) -> None:
        """Tell every listener its subscription was lost (``False``) or made again."""
        for status in self._statuses:
            status(up)


@pytest.fixture
async def bus_nodes() -> AsyncIterator[tuple[CachedSessionStore, CachedSessionStore, Bus]]:
    """Two caches over one memory store and one bus."""
    bus, inner = Bus(), MemoryStores().sessions
    a = CachedSessionStore(inner, bus, ttl=LONG)
    b = CachedSessionStore(inner, bus, ttl=LONG)
    await a.start()
    await b.start()
    yield a, b, bus
    await a.aclose()
    await b.aclose()


async def test_a_read_overtaken_by_an_invalidation_is_returned_but_not_cached(
    bus_nodes: tuple[CachedSessionStore, CachedSessionStore, Bus],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b, _ = bus_nodes
    record = session("u1")
    await a.add(record)
    read, release = asyncio.Event(), asyncio.Event()
    store_get = a.inner.get

    async def slow_get(digest: str) -> SessionRecord | None:
        found = await store_get(digest)  # the row as it was before the delete
        read.set()
        await release.wait()
        return found

    monkeypatch.setattr(a.inner, "get", slow_get)
    lookup = asyncio.create_task(a.get(record.id_digest))
    await read.wait()
    assert await b.delete(record.id_digest) is True
    release.set()
    assert await lookup == record  # it began before the delete: a fair answer once
    monkeypatch.undo()
    assert await a.get(record.id_digest) is None  # ... but never cached


async def test_a_lost_subscription_bypasses_and_empties_the_cache_until_it_is_back(
    bus_nodes: tuple[CachedSessionStore, CachedSessionStore, Bus],
) -> None:
    a, _, bus = bus_nodes
    record = session("u1")
    await a.add(record)
    await a.get(record.id_digest)
    assert a.status().entries == 1
    bus.connection(up=False)
    assert a.status().entries == 0
    assert a.status().push_connected is False
    await a.get(record.id_digest)
    assert a.status().entries == 0  # nothing cached while the push is down
    bus.connection(up=True)
    await a.get(record.id_digest)
    assert a.status().entries == 1


async def test_an_unreadable_expiry_topic_empties_the_cache(
    bus_nodes: tuple[CachedSessionStore, CachedSessionStore, Bus],
) -> None:
    a, _, bus = bus_nodes
    for n, topic in enumerate(["sessions-expired:yesterday", "sessions-expired:2026-01-01T00:00"]):
        record = session("u1", n)
        await a.add(record)
        await a.get(record.id_digest)
        await bus.publish(topic)  # not an aware ISO 8601 instant
        assert a.status().entries == 0, topic


async def test_topics_of_others_leave_the_cache_alone(
    bus_nodes: tuple[CachedSessionStore, CachedSessionStore, Bus],
) -> None:
    a, _, bus = bus_nodes
    record = session("u1")
    await a.add(record)
    await a.get(record.id_digest)
    for topic in ("revocations", "keys", "session:" + "0" * 64, "user-sessions:u2"):
        await bus.publish(topic)
    assert a.status().entries == 1


async def test_writes_publish_what_they_changed(
    bus_nodes: tuple[CachedSessionStore, CachedSessionStore, Bus],
) -> None:
    a, _, bus = bus_nodes
    record = session("u1")
    await a.add(record)
    await a.touch(record.id_digest, LATER)
    await a.rotate(record.id_digest, session("u1", 2))
    await a.delete(record.id_digest)
    await a.delete_by_handle("u1", "handle")
    await a.delete_for_user("u1")
    await a.purge_expired(LATER)
    digest = "session:" + record.id_digest
    assert bus.published == [
        digest,
        digest,
        digest,
        "user-sessions:u1",
        "user-sessions:u1",
        "sessions-expired:" + LATER.isoformat(),
    ]


async def test_a_failed_push_is_logged_and_the_write_still_counts(
    bus_nodes: tuple[CachedSessionStore, CachedSessionStore, Bus],
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, _, bus = bus_nodes
    record = session("u1")
    await a.add(record)
    await a.get(record.id_digest)
    bus.failing = True
    assert await a.delete(record.id_digest) is True
    assert await a.get(record.id_digest) is None  # evicted here all the same
    assert "session invalidation push failed" in caplog.text
    assert record.id_digest not in caplog.text


async def test_a_cached_session_past_its_idle_deadline_is_refused_and_deleted(
    bus_nodes: tuple[CachedSessionStore, CachedSessionStore, Bus],
) -> None:
    """Deadlines come from the record's timestamps, hit or miss: the cache keeps no
    session alive (its own clock has not moved, so the entry is still fresh)."""
    a, _, _ = bus_nodes
    clock = FrozenClock(T0)
    policy = SessionPolicy(idle_timeout=timedelta(minutes=30), touch_interval=timedelta(minutes=5))
    service = SessionService(a, policy, now=clock)
    issued = await service.start("u1")
    await service.resolve(issued.secret)
    assert a.status().entries == 1
    clock.advance(timedelta(minutes=30))
    with pytest.raises(SessionExpired):
        await service.resolve(issued.secret)
    assert await a.inner.get(issued.record.id_digest) is None


async def test_a_failed_write_evicts_all_the_same(
    bus_nodes: tuple[CachedSessionStore, CachedSessionStore, Bus],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The write may have happened before the error: the entry must not survive it."""
    a, _, _ = bus_nodes
    record = session("u1")
    await a.add(record)
    await a.get(record.id_digest)

    async def broken(_digest: str) -> bool:
        raise StoreUnavailable("lost the reply")

    monkeypatch.setattr(a.inner, "delete", broken)
    with pytest.raises(StoreUnavailable):
        await a.delete(record.id_digest)
    assert a.status().entries == 0


async def test_ttl_zero_never_caches_nor_listens_but_still_publishes() -> None:
    bus, inner = Bus(), MemoryStores().sessions
    cache = CachedSessionStore(inner, bus, ttl=timedelta(0))
    await cache.start()
    record = session("u1")
    await cache.add(record)
    assert await cache.get(record.id_digest) == record
    status = cache.status()
    assert (status.enabled, status.push_connected, status.entries) == (False, False, 0)
    await cache.delete(record.id_digest)
    assert bus.published == ["session:" + record.id_digest]
    await cache.aclose()


@pytest.mark.parametrize(
    ("ttl", "max_entries"), [(timedelta(seconds=-1), 10), (timedelta(seconds=1), 0)]
)
def test_a_negative_ttl_or_no_room_is_refused(ttl: timedelta, max_entries: int) -> None:
    with pytest.raises(ConfigurationError):
        CachedSessionStore(MemoryStores().sessions, Bus(), ttl=ttl, max_entries=max_entries)
