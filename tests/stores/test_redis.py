"""Redis specifics: key layout and TTLs, races across slots, Cluster slots, failing closed.

The contract suite (``test_contract*.py``) covers the behaviour every backend shares.
Tests here use the shared server under a fresh key prefix, or a ``redis-server`` of
their own when they stop it or run it as a cluster.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from tests.stores import test_contract, test_contract_tokens
from tests.stores.test_contract import T0, session
from tests.stores.test_contract_tokens import family
from tests.support.ports import free_port
from tests.support.redis import (
    REDIS_URL,
    RedisServer,
    delete_prefix,
    dump_prefix,
    new_prefix,
    require_redis_server,
)
from tests.support.redis import require_redis as require_shared_redis
from velvetrope import FrozenClock
from velvetrope.core.ids import new_secret, secret_digest
from velvetrope.core.sessions import SessionService
from velvetrope.errors import ConfigurationError, SessionExpired, StoreUnavailable
from velvetrope.stores import MemoryStores, Stores
from velvetrope.stores.composite import CompositeStores
from velvetrope.stores.records import RevocationRecord
from velvetrope.stores.redis import RedisStores

REVOCATION = RevocationRecord("jti", "j1", T0, T0 + timedelta(minutes=15))


@pytest.fixture
async def stores() -> AsyncIterator[RedisStores]:
    """Redis stores on the shared server under a fresh prefix, deleted afterwards."""
    require_shared_redis()
    opened = RedisStores(REDIS_URL, prefix=new_prefix())
    await opened.start()
    yield opened
    try:
        await delete_prefix(opened.prefix)
    finally:
        await opened.aclose()


@pytest.fixture
async def raw() -> AsyncIterator[Redis]:
    """A plain client to the shared server, to look behind the stores' back."""
    require_shared_redis()
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


# --- a redis-server of the test's own -------------------------------------------------


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A stopped server of the test's own; skipped (failed under CI) without redis-server."""
    server = RedisServer(require_redis_server(), tmp_path)
    yield server
    server.stop()


# --- layout and TTLs -------------------------------------------------------------------


async def _key_types(raw: Redis, prefix: str) -> dict[str, str]:
    return {
        key.removeprefix(prefix): str(await raw.type(key))
        async for key in raw.scan_iter(match=prefix + "*", count=1000)
    }


async def test_keys_follow_the_documented_layout(stores: RedisStores, raw: Redis) -> None:
    s, token, successor = session("u1"), new_secret(), new_secret()
    await stores.sessions.add(s)
    await stores.throttle.record_failure("ip:192.0.2.1", T0, window_start=T0 - timedelta(hours=1))
    await stores.refresh.create(family("f1", "u1"), secret_digest(token))
    await stores.refresh.rotate("f1", from_generation=0, digest=secret_digest(successor), now=T0)
    await stores.revocations.append(REVOCATION)
    assert await _key_types(raw, stores.prefix) == {
        f"s:{{{s.id_digest}}}": "hash",
        "u:{u1}:s": "set",
        "s:exp": "zset",
        "t:{ip:192.0.2.1}": "hash",
        "t:last": "zset",
        "f:{f1}": "hash",
        f"r:{{{secret_digest(token)}}}": "string",
        f"r:{{{secret_digest(successor)}}}": "string",
        "u:{u1}:f": "set",
        "f:exp": "zset",
        "rv:{feed}:seq": "string",
        "rv:{feed}:log": "stream",
        "rv:{feed}:exp": "zset",
    }


async def test_only_the_global_indexes_and_the_feed_live_without_a_ttl(
    stores: RedisStores, raw: Redis
) -> None:
    await stores.sessions.add(session("u1"))
    await stores.throttle.record_failure("k", T0, window_start=T0 - timedelta(hours=1))
    await stores.refresh.create(family("f1", "u1"), secret_digest(new_secret()))
    await stores.revocations.append(REVOCATION)
    immortal = {
        name
        for name in await _key_types(raw, stores.prefix)
        if await raw.pttl(stores.prefix + name) < 0
    }
    assert immortal == {
        "s:exp",
        "t:last",
        "f:exp",
        "rv:{feed}:seq",
        "rv:{feed}:log",
        "rv:{feed}:exp",
    }


async def test_SESS_11_session_ttl_ends_at_expiry_and_touch_never_extends_it(
    stores: RedisStores, raw: Redis
) -> None:
    """The TTL is the lifetime left on core's clock; activity does not push it back."""
    s = session("u1")  # 12 hours from its last activity to its absolute expiry
    key = f"{stores.prefix}s:{{{s.id_digest}}}"
    await stores.sessions.add(s)
    before = await raw.pttl(key)
    assert 43_190_000 < before <= 43_200_000
    assert await stores.sessions.touch(s.id_digest, s.last_seen_at + timedelta(hours=1))
    assert await raw.pttl(key) <= before
    assert await raw.hget(key, "l") is not None


async def test_SESS_11_core_refuses_an_expired_session_that_redis_still_holds(
    stores: RedisStores, raw: Redis
) -> None:
    """Store TTL still long, ``expires_at`` past on core's clock: the session is refused."""
    clock = FrozenClock()
    service = SessionService(stores.sessions, now=clock)
    issued = await service.start("u1")
    clock.advance(service.policy.absolute_lifetime)
    assert await raw.pttl(f"{stores.prefix}s:{{{issued.record.id_digest}}}") > 0
    with pytest.raises(SessionExpired):
        await service.resolve(issued.secret)


async def test_throttle_counter_lives_until_its_window_ends(
    stores: RedisStores, raw: Redis
) -> None:
    window, key = timedelta(minutes=15), f"{stores.prefix}t:{{ip:1}}"
    await stores.throttle.record_failure("ip:1", T0, window_start=T0 - window)
    assert 890_000 < await raw.pttl(key) <= 900_000
    later = T0 + timedelta(minutes=5)
    second = await stores.throttle.record_failure("ip:1", later, window_start=later - window)
    assert second.count == 2
    assert 590_000 < await raw.pttl(key) <= 600_000  # the window still runs from T0


async def test_purge_before_forgets_old_counters_and_their_index_entries(
    stores: RedisStores, raw: Redis
) -> None:
    window = timedelta(hours=1)
    await stores.throttle.record_failure("old", T0, window_start=T0 - window)
    later = T0 + timedelta(minutes=10)
    await stores.throttle.record_failure("new", later, window_start=later - window)
    assert await stores.throttle.purge_before(T0) == 0  # strictly before
    assert await stores.throttle.purge_before(later) == 1
    assert await stores.throttle.get("old") is None
    assert await stores.throttle.get("new") is not None
    assert await raw.zrange(f"{stores.prefix}t:last", 0, -1) == ["new"]
    await stores.throttle.clear("new")
    assert await _key_types(raw, stores.prefix) == {}


async def test_SESS_03_redis_holds_only_digests(stores: RedisStores) -> None:
    """Dump every key and value: the digests are there, the raw session ID and token are not."""
    secret, token = new_secret(), new_secret()
    await stores.sessions.add(session("u1", secret=secret))
    await stores.refresh.create(family(), secret_digest(token))
    dump = await dump_prefix(stores.prefix)
    assert secret_digest(secret).encode() in dump
    assert secret_digest(token).encode() in dump
    assert secret.encode() not in dump
    assert token.encode() not in dump


async def test_get_is_one_round_trip(stores: RedisStores, monkeypatch: pytest.MonkeyPatch) -> None:
    s = session("u1")
    await stores.sessions.add(s)
    client = stores._client
    sent: list[Any] = []
    original: Callable[..., Awaitable[Any]] = client.execute_command

    async def spy(*args: Any, **options: Any) -> Any:
        sent.append(args[0])
        return await original(*args, **options)

    monkeypatch.setattr(client, "execute_command", spy)
    assert await stores.sessions.get(s.id_digest) == s
    assert sent == ["HGETALL"]


# --- lazily pruned indexes ---------------------------------------------------------------


async def test_index_entries_of_vanished_sessions_are_skipped_then_purged(
    stores: RedisStores, raw: Redis
) -> None:
    gone, kept = session("u1", 1), session("u1", 2)
    await stores.sessions.add(gone)
    await stores.sessions.add(kept)
    await raw.unlink(f"{stores.prefix}s:{{{gone.id_digest}}}")  # as its TTL would
    assert await stores.sessions.list_for_user("u1") == [kept]
    assert await stores.sessions.purge_expired(gone.expires_at) == 0  # nothing left to delete
    assert await raw.smembers(f"{stores.prefix}u:{{u1}}:s") == {kept.id_digest}
    assert await raw.zcard(f"{stores.prefix}s:exp") == 1


async def test_purge_of_families_removes_their_lookup_keys_and_index_entries(
    stores: RedisStores, raw: Redis
) -> None:
    await stores.refresh.create(family("f1", "u1"), secret_digest(new_secret()))
    assert await stores.refresh.purge_expired(family().expires_at) == 1
    assert await _key_types(raw, stores.prefix) == {}


async def test_purges_walk_the_expiry_index_batch_by_batch(
    stores: RedisStores, raw: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seven due sessions and families, three per round trip: every one goes, and the
    index entry of a session Redis already expired is pruned without being counted."""
    monkeypatch.setattr("velvetrope.stores.redis._base.PURGE_BATCH", 3)
    sessions = [session(f"u{n % 2}", n) for n in range(1, 8)]
    for s in sessions:
        await stores.sessions.add(s)
    for n in range(1, 8):
        await stores.refresh.create(family(f"f{n}", f"u{n % 2}", n), secret_digest(new_secret()))
    await raw.unlink(f"{stores.prefix}s:{{{sessions[0].id_digest}}}")  # as its TTL would

    latest = max(s.expires_at for s in sessions)
    assert await stores.sessions.purge_expired(latest) == 6
    assert await stores.refresh.purge_expired(family(n=7).expires_at) == 7
    assert await _key_types(raw, stores.prefix) == {}


async def test_a_lookup_key_the_family_does_not_list_finds_nothing(
    stores: RedisStores, raw: Redis
) -> None:
    """What a rotation interrupted after its lookup key, or a lost one, may leave behind."""
    await stores.refresh.create(family(), secret_digest(new_secret()))
    stray = secret_digest(new_secret())
    await raw.set(f"{stores.prefix}r:{{{stray}}}", "f1")
    assert await stores.refresh.find(stray) is None


async def test_RT_05_a_digest_the_family_already_issued_cannot_be_issued_again(
    stores: RedisStores,
) -> None:
    first = secret_digest(new_secret())
    await stores.refresh.create(family(), first)
    assert not await stores.refresh.rotate("f1", from_generation=0, digest=first, now=T0)
    assert await stores.refresh.get("f1") == family()


async def test_revocation_sequence_keeps_rising_after_redis_loses_the_feed(
    stores: RedisStores, raw: Redis
) -> None:
    """A restart without persistence empties the feed; nodes' cursors must not skip new entries."""
    first = await stores.revocations.append(REVOCATION)
    await raw.unlink(*(f"{stores.prefix}rv:{{feed}}:{part}" for part in ("seq", "log", "exp")))
    again = dataclasses.replace(REVOCATION, value="j2")
    second = await stores.revocations.append(again)
    assert second > first
    assert await stores.revocations.since(first) == [(second, again)]


# --- races ---------------------------------------------------------------------------------


async def test_SESS_12_log_out_everywhere_wins_against_racing_rotations(
    stores: RedisStores,
) -> None:
    """Whatever the interleaving, no session started before "log out everywhere" survives it."""
    for n in range(20):
        user = f"racer{n}"
        old, new = session(user, 1), session(user, 2)
        await stores.sessions.add(old)
        rotated, _ = await asyncio.gather(
            stores.sessions.rotate(old.id_digest, new), stores.sessions.delete_for_user(user)
        )
        assert await stores.sessions.list_for_user(user) == [], (n, rotated)
        assert await stores.sessions.get(new.id_digest) is None, (n, rotated)


@pytest.mark.parametrize("paused_before", ["writing the new session", "listing the new session"])
async def test_SESS_12_log_out_everywhere_inside_a_rotation_makes_the_rotation_lose(
    stores: RedisStores, monkeypatch: pytest.MonkeyPatch, paused_before: str
) -> None:
    """The rotation has consumed the old session but not yet listed the new one when
    "log out everywhere" runs start to finish: the new session must not survive."""
    reached, release = asyncio.Event(), asyncio.Event()

    def paused(call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            reached.set()
            await release.wait()
            return await call(*args, **kwargs)

        return wrapper

    old, new = session("u1", 1), session("u1", 2)
    await stores.sessions.add(old)
    sessions: Any = stores.sessions.inner  # the Redis store behind the near-cache
    if paused_before == "writing the new session":
        monkeypatch.setattr(sessions, "_put", paused(sessions._put))
    else:
        scripts = sessions._scripts
        swap = paused(scripts.swap_member)
        monkeypatch.setattr(sessions, "_scripts", dataclasses.replace(scripts, swap_member=swap))
    rotation = asyncio.create_task(stores.sessions.rotate(old.id_digest, new))
    await reached.wait()
    assert await stores.sessions.delete_for_user("u1") == 0  # the rotation consumed it
    release.set()
    assert await rotation is False
    assert await stores.sessions.list_for_user("u1") == []
    assert await stores.sessions.get(new.id_digest) is None


async def test_rotating_the_kept_session_leaves_it_or_its_successor_never_both(
    stores: RedisStores,
) -> None:
    for n in range(40):
        user = f"keeper{n}"
        old, new, other = session(user, 1), session(user, 2), session(user, 3)
        await stores.sessions.add(old)
        await stores.sessions.add(other)
        await asyncio.gather(
            stores.sessions.rotate(old.id_digest, new),
            stores.sessions.delete_for_user(user, keep=old.id_digest),
        )
        listed = await stores.sessions.list_for_user(user)
        assert listed in ([], [new]), n
        assert (await stores.sessions.get(new.id_digest) is not None) == (listed == [new]), n
        assert await stores.sessions.get(other.id_digest) is None, n


async def test_SESS_10_rotations_from_separate_clients_have_exactly_one_winner(
    stores: RedisStores,
) -> None:
    """Eight clients, each with its own connection pool (as eight processes would have)."""
    others = [RedisStores(REDIS_URL, prefix=stores.prefix) for _ in range(8)]
    try:
        old = session("u1", 0)
        await stores.sessions.add(old)
        won = await asyncio.gather(
            *(c.sessions.rotate(old.id_digest, session("u1", n)) for n, c in enumerate(others, 1))
        )
        assert sorted(won) == [False] * 7 + [True]
        await stores.refresh.create(family(), secret_digest(new_secret()))
        won = await asyncio.gather(
            *(
                c.refresh.rotate(
                    "f1", from_generation=0, digest=secret_digest(new_secret()), now=T0
                )
                for c in others
            )
        )
        assert sorted(won) == [False] * 7 + [True]
    finally:
        for other in others:
            await other.aclose()


# --- push between nodes --------------------------------------------------------------


class Inbox:
    """Collects the topics a listener hears; can be told to fail a delivery first."""

    def __init__(self, *, fail_first: bool = False) -> None:
        self.topics: list[str] = []
        self.arrived = asyncio.Event()
        self._fail = fail_first

    async def __call__(self, topic: str) -> None:
        if self._fail:
            self._fail = False
            raise StoreUnavailable("the re-read failed")
        self.topics.append(topic)
        self.arrived.set()

    async def next(self) -> str:
        async with asyncio.timeout(10):
            await self.arrived.wait()
        self.arrived.clear()
        return self.topics[-1]


async def _subscribed(url: str, channel: str, listeners: int = 1) -> None:
    client = Redis.from_url(url, decode_responses=True)
    try:
        for _ in range(500):
            if dict(await client.pubsub_numsub(channel)).get(channel, 0) >= listeners:
                return
            await asyncio.sleep(0.02)
        pytest.fail(f"nobody subscribed to {channel}")
    finally:
        await client.aclose()


async def test_a_published_topic_reaches_listeners_of_the_same_prefix_only(
    stores: RedisStores,
) -> None:
    node = RedisStores(REDIS_URL, prefix=stores.prefix)
    stranger = RedisStores(REDIS_URL, prefix=new_prefix())
    inbox, strangers = Inbox(fail_first=True), Inbox()
    listening = [
        asyncio.create_task(node.notifier.listen(inbox)),
        asyncio.create_task(stranger.notifier.listen(strangers)),
    ]
    try:
        # `stores` (started) listens too, for its session cache.
        await _subscribed(REDIS_URL, node.notifier.channel, listeners=2)
        await _subscribed(REDIS_URL, stranger.notifier.channel)
        await stores.notifier.publish("keys")  # its re-read fails: logged, still listening
        await stores.notifier.publish("revocations")
        assert await inbox.next() == "revocations"
        assert strangers.topics == []
    finally:
        for task in listening:
            task.cancel()
        await asyncio.gather(*listening, return_exceptions=True)
        await node.aclose()
        await stranger.aclose()


async def test_listening_resumes_by_itself_after_an_outage(own_server: RedisServer) -> None:
    own_server.start()
    stores = RedisStores(own_server.url)
    inbox = Inbox()
    listening = asyncio.create_task(stores.notifier.listen(inbox))
    try:
        await _subscribed(own_server.url, stores.notifier.channel)
        own_server.stop()
        with pytest.raises(StoreUnavailable):
            await stores.notifier.publish("keys")
        own_server.start()
        await _subscribed(own_server.url, stores.notifier.channel)
        await stores.notifier.publish("keys")
        assert await inbox.next() == "keys"
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await stores.aclose()


# --- configuration ---------------------------------------------------------------------


def test_a_prefix_with_a_brace_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="cannot contain"):
        RedisStores(REDIS_URL, prefix="app{1}:")


def test_an_unparseable_url_is_a_configuration_error_without_the_url() -> None:
    with pytest.raises(ConfigurationError, match="not valid") as caught:
        RedisStores("nosuchscheme://user:hunter2@host/0")
    assert "hunter2" not in caught.value.detail


async def test_prefixes_keep_deployments_apart(stores: RedisStores) -> None:
    neighbour = RedisStores(REDIS_URL, prefix=new_prefix())
    try:
        s = session("u1")
        await stores.sessions.add(s)
        assert await neighbour.sessions.get(s.id_digest) is None
        assert await neighbour.sessions.list_for_user("u1") == []
    finally:
        await neighbour.aclose()


async def test_start_refuses_a_server_older_than_7(
    stores: RedisStores, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def old_info(*_: object) -> dict[str, str]:
        return {"redis_version": "6.2.14"}

    monkeypatch.setattr(stores._client, "info", old_info)
    with pytest.raises(ConfigurationError, match=r"7\.0 or later"):
        await stores.start()


# --- Redis Cluster -------------------------------------------------------------------------


def test_keys_scripts_touch_together_share_one_slot() -> None:
    prefix = "velvetrope:"
    feed = {key_slot(f"{prefix}rv:{{feed}}:{part}".encode()) for part in ("seq", "log", "exp")}
    assert len(feed) == 1
    digest = "ab" * 32
    assert key_slot(f"{prefix}s:{{{digest}}}".encode()) == key_slot(digest.encode())
    assert key_slot(f"{prefix}u:{{u1}}:s".encode()) == key_slot(b"u1")


async def _wait_for_cluster(url: str) -> None:
    client = Redis.from_url(url, decode_responses=True)
    command: Callable[..., Awaitable[Any]] = client.execute_command
    try:
        await command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        for _ in range(200):
            if "cluster_state:ok" in await command("CLUSTER", "INFO"):
                return
            await asyncio.sleep(0.05)
        pytest.fail("the one-node cluster never became ready")
    finally:
        await client.aclose()


def _contract_tests() -> list[Callable[[Stores], Awaitable[None]]]:
    """Every contract test that takes only ``stores``."""
    return [
        test
        for module in (test_contract, test_contract_tokens)
        for name, test in sorted(vars(module).items())
        if name.startswith("test_") and list(inspect.signature(test).parameters) == ["stores"]
    ]


async def test_the_contract_holds_on_a_cluster_node_that_refuses_cross_slot_commands(
    own_server: RedisServer,
) -> None:
    """A one-node cluster owns every slot yet still refuses commands and transactions whose
    keys span slots (CROSSSLOT): the whole contract suite must pass on it."""
    own_server.start("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
    await _wait_for_cluster(own_server.url)
    redis_stores = RedisStores(own_server.url)
    try:
        await redis_stores.start()
        contract = _contract_tests()
        assert len(contract) > 20
        for test in contract:
            await redis_stores._client.flushall()
            await test(CompositeStores(MemoryStores(), redis_stores))
        for _, call in _every_operation(redis_stores):
            await call()
    finally:
        await redis_stores.aclose()


# --- failing closed (TERM-05) --------------------------------------------------------------


def _every_operation(stores: RedisStores) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    """One call of every store method, on data that may or may not exist."""
    s, d, later = session("u1"), secret_digest(new_secret()), T0 + timedelta(days=60)
    window = T0 - timedelta(hours=1)
    return [
        ("start", stores.start),
        ("ping", stores.ping),
        ("sessions.add", lambda: stores.sessions.add(s)),
        ("sessions.get", lambda: stores.sessions.get(s.id_digest)),
        ("sessions.touch", lambda: stores.sessions.touch(s.id_digest, T0)),
        ("sessions.rotate", lambda: stores.sessions.rotate(s.id_digest, session("u1", 2))),
        ("sessions.delete", lambda: stores.sessions.delete(d)),
        ("sessions.delete_by_handle", lambda: stores.sessions.delete_by_handle("u1", "h")),
        ("sessions.list_for_user", lambda: stores.sessions.list_for_user("u1")),
        ("sessions.delete_for_user", lambda: stores.sessions.delete_for_user("u1", keep=d)),
        ("sessions.purge_expired", lambda: stores.sessions.purge_expired(later)),
        (
            "throttle.record_failure",
            lambda: stores.throttle.record_failure("k", T0, window_start=window),
        ),
        (
            "throttle.count_if",
            lambda: stores.throttle.count_if("k", T0, window_start=window, limit=5),
        ),
        ("throttle.release", lambda: stores.throttle.release("k", first_at=T0)),
        ("throttle.get", lambda: stores.throttle.get("k")),
        ("throttle.clear", lambda: stores.throttle.clear("k")),
        ("throttle.purge_before", lambda: stores.throttle.purge_before(later)),
        ("refresh.create", lambda: stores.refresh.create(family(), d)),
        ("refresh.find", lambda: stores.refresh.find(d)),
        ("refresh.get", lambda: stores.refresh.get("f1")),
        (
            "refresh.rotate",
            lambda: stores.refresh.rotate("f1", from_generation=0, digest=d + "1", now=T0),
        ),
        ("refresh.list_for_user", lambda: stores.refresh.list_for_user("u1")),
        ("refresh.revoke", lambda: stores.refresh.revoke("f1", T0)),
        ("refresh.revoke_for_user", lambda: stores.refresh.revoke_for_user("u1", T0, keep="f2")),
        ("refresh.purge_expired", lambda: stores.refresh.purge_expired(later)),
        ("revocations.append", lambda: stores.revocations.append(REVOCATION)),
        ("revocations.since", lambda: stores.revocations.since(0)),
        ("revocations.purge_expired", lambda: stores.revocations.purge_expired(later)),
    ]


async def test_TERM_05_an_outage_fails_closed_and_recovery_needs_no_restart(
    own_server: RedisServer,
) -> None:
    """Stop the server: every operation raises StoreUnavailable, none answers "not found".
    Start it again on the same port: the same stores work again, reconnecting by themselves."""
    own_server.start()
    stores = RedisStores(own_server.url)
    try:
        for _, call in _every_operation(stores):
            await call()
        own_server.stop()
        answered = []
        for name, call in _every_operation(stores):
            try:
                await call()
            except StoreUnavailable:
                continue
            answered.append(name)
        assert answered == []
        own_server.start()
        for _, call in _every_operation(stores):
            await call()
        s = session("u9")
        await stores.sessions.add(s)
        assert await stores.sessions.get(s.id_digest) == s
    finally:
        await stores.aclose()


async def test_TERM_05_a_server_that_never_answers_fails_closed_after_the_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stores = RedisStores(f"redis://127.0.0.1:{port}/0", timeout=timedelta(milliseconds=200))
    try:
        async with asyncio.timeout(10):
            with pytest.raises(StoreUnavailable):
                await stores.sessions.get("0" * 64)
    finally:
        await stores.aclose()
        server.close()
        await server.wait_closed()


async def test_TERM_05_a_wrong_reply_fails_closed(stores: RedisStores, raw: Redis) -> None:
    """A key of the wrong type (another app, a bad migration) is an error, not "no session"."""
    digest = "0" * 64
    await raw.set(f"{stores.prefix}s:{{{digest}}}", "not a hash")
    with pytest.raises(StoreUnavailable):
        await stores.sessions.get(digest)


async def test_start_on_an_unreachable_server_is_store_unavailable() -> None:
    stores = RedisStores(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(StoreUnavailable, match="ConnectionError"):
            await stores.start()
    finally:
        await stores.aclose()


def test_TERM_05_a_redis_client_losing_its_writer_mid_command_is_an_outage() -> None:
    """redis-py can lose its connection's writer to a concurrent disconnect during a
    Cluster failover (AttributeError inside the client): that fails closed as a 503."""
    from redis.asyncio.connection import Connection  # noqa: PLC0415

    from velvetrope.errors import StoreUnavailable  # noqa: PLC0415
    from velvetrope.stores.redis._base import guard  # noqa: PLC0415

    async def send() -> None:
        conn = Connection()  # never connected: its writer is None, as after the race
        await conn._send_packed_command([b"PING"])

    with pytest.raises(StoreUnavailable), guard():
        asyncio.run(send())
    with pytest.raises(AttributeError), guard():  # our own bugs stay bugs
        None.missing  # type: ignore[attr-defined]  # noqa: B018


def test_TERM_05_a_write_on_a_transport_closed_under_redis_py_is_an_outage() -> None:
    """Under uvloop a write on a transport a concurrent disconnect closed raises
    RuntimeError ("the handler is closed") through redis-py (seen during a Cluster
    failover): that fails closed as a 503; a RuntimeError of our own stays a bug."""
    import uvloop  # noqa: PLC0415

    from velvetrope.errors import StoreUnavailable  # noqa: PLC0415
    from velvetrope.stores.redis._base import guard  # noqa: PLC0415

    require_shared_redis()
    with pytest.raises(StoreUnavailable, match="connection lost"), guard():
        uvloop.run(_write_on_a_closed_transport())
    with pytest.raises(RuntimeError), guard():
        raise RuntimeError("the handler is closed, but not in redis")


async def _write_on_a_closed_transport() -> None:
    """Send through redis-py on a connection whose transport was closed under it (run
    under uvloop: it raises RuntimeError, "the handler is closed", through redis-py)."""
    from redis.asyncio.connection import Connection  # noqa: PLC0415

    conn = Connection(host="127.0.0.1", port=6379)
    await conn.connect()  # type: ignore[no-untyped-call]
    assert conn._writer is not None
    conn._writer.transport.abort()  # the disconnect won the race
    for _ in range(3):  # uvloop closes the handle on a later loop iteration
        await asyncio.sleep(0)
    try:
        await conn._send_packed_command([b"PING\r\n"])
    finally:
        await conn.disconnect()


class _ClosedUnderIt:
    """A client whose every call meets what a Cluster failover's concurrent disconnect
    leaves behind: under uvloop, redis-py writes on a transport already closed, and
    uvloop raises RuntimeError ("the handler is closed") through redis-py's frames."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls = 0
        self.raced_pubsub = False

    async def _race(self) -> None:
        self.calls += 1
        await _write_on_a_closed_transport()

    async def hgetall(self, _key: str) -> dict[str, str]:
        await self._race()
        raise AssertionError("the write on a closed transport did not raise")

    def pubsub(self) -> Any:
        """The first subscription meets the race; later ones are the real client's."""
        if self.raced_pubsub:
            return self.real.pubsub()
        self.raced_pubsub = True
        racing = self

        class _PubSub:
            async def __aenter__(self) -> _PubSub:
                return self

            async def __aexit__(self, *_exc: object) -> None:
                return None

            async def subscribe(self, _channel: str) -> None:
                await racing._race()

        return _PubSub()


def test_TERM_05_the_per_request_read_and_the_listener_survive_a_closed_transport() -> None:
    """The two calls outside ``guard()`` (the per-request session read, for speed, and
    the pub/sub loop) sort that race the same way: the read fails closed as a 503 (not
    a 500), and the listener subscribes again instead of dying (which would leave the
    node's near-cache without push for good: a flaky Cluster failover test saw both)."""
    import uvloop  # noqa: PLC0415

    require_shared_redis()

    async def main() -> None:
        stores = RedisStores(REDIS_URL, prefix=new_prefix())
        racing = _ClosedUnderIt(stores._client)
        stores.sessions.inner._client = racing  # type: ignore[attr-defined]
        notifier: Any = stores.notifier
        notifier._client = racing
        notifier._retry_every = 0.01
        inbox = Inbox()
        listening = asyncio.create_task(notifier.listen(inbox))
        try:
            with pytest.raises(StoreUnavailable, match="connection lost"):
                await stores.sessions.inner.get("0" * 64)
            await _subscribed(REDIS_URL, notifier.channel)
            await stores._client.publish(notifier.channel, "keys")
            assert await inbox.next() == "keys"
            assert racing.calls == 2  # the read, then the listener's first subscription
            assert not listening.done()
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
            await stores.aclose()

    uvloop.run(main())
