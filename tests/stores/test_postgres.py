"""PostgreSQL specifics: migrations, many nodes at once, failing closed, outages, restarts.

The contract suite (``test_contract*.py``) runs against PostgreSQL as one of
``tests.conftest.BACKENDS``; these are the properties only a shared server has. Tests
that stop the server run their own cluster (:class:`TempCluster`); the rest use the
server at ``VELVETROPE_TEST_POSTGRES_URL``, each in a schema of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
import pytest
from typer.testing import CliRunner

from tests.stores.test_contract import session, user
from tests.stores.test_contract_tokens import family
from tests.support.aio import within
from tests.support.ports import free_port
from tests.support.postgres import (
    ADMIN_URL,
    DisposableStores,
    TempCluster,
    drop_schema,
    new_schema_name,
    postgres_dump,
    require_postgres,
    running_cluster,
)
from velvetrope.cli import app
from velvetrope.core.ids import new_secret, secret_digest
from velvetrope.errors import ConfigurationError, EmailTaken, StoreUnavailable
from velvetrope.stores.postgres import PostgresStores
from velvetrope.stores.postgres import schema as schema_module
from velvetrope.stores.postgres.notifier import channel_name
from velvetrope.stores.postgres.schema import MIGRATIONS
from velvetrope.stores.records import KeyRecord, RevocationRecord, SchemaVersion

T0 = datetime(2026, 1, 1, tzinfo=UTC)
QUICKLY = 3.0  # seconds: the most a call may take to fail closed during an outage

Admin: TypeAlias = "asyncpg.Connection[asyncpg.Record]"


@pytest.fixture
def pg_url() -> str:
    return require_postgres()


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[DisposableStores]:
    """Started stores in a fresh schema of the shared server."""
    stores = DisposableStores()
    await stores.start()
    yield stores
    await stores.aclose()


@pytest.fixture
async def admin(pg_url: str) -> AsyncIterator[Admin]:
    """A plain connection to the shared server, outside any store."""
    conn: Admin = await asyncpg.connect(pg_url)
    yield conn
    await conn.close()


@pytest.fixture
async def fresh_schema(pg_url: str) -> AsyncIterator[str]:
    """The name of a schema that does not exist yet (dropped after the test)."""
    name = new_schema_name()
    yield name
    await drop_schema(name)


async def nodes(schema: str, n: int, **options: Any) -> list[PostgresStores]:
    """``n`` started stores on one schema, each with its own pool: ``n`` app nodes."""
    options.setdefault("max_size", 4)
    started = [PostgresStores(ADMIN_URL, schema=schema, **options) for _ in range(n)]
    for node in started:
        await node.start()
    return started


async def close_all(stores: list[PostgresStores]) -> None:
    await asyncio.gather(*(s.aclose() for s in stores))


# --- migrations ------------------------------------------------------------------------


async def test_start_creates_the_schema_and_records_every_migration(
    pg_url: str, fresh_schema: str, admin: Admin
) -> None:
    stores = PostgresStores(pg_url, schema=fresh_schema)
    try:
        assert await stores.migrate() == SchemaVersion(0, len(MIGRATIONS))
        await admin.execute(f"SET search_path = {fresh_schema}")
        versions = await admin.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [v for (v,) in versions] == list(range(1, len(MIGRATIONS) + 1))
        columns = await admin.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = $1 AND column_name LIKE '%\\_at'",
            fresh_schema,
        )
        assert columns  # every instant is a timestamptz, never a naive timestamp
        assert {t for (_, _, t) in columns} == {"timestamp with time zone"}
        sequence = await admin.fetchval(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = 'revocations' AND column_name = 'sequence'",
            fresh_schema,
        )
        assert sequence == "bigint"
    finally:
        await stores.aclose()


async def test_starting_again_keeps_the_data_and_migrates_nothing(
    pg_url: str, fresh_schema: str
) -> None:
    first = PostgresStores(pg_url, schema=fresh_schema)
    await first.start()
    await first.users.add(user(1))
    await first.aclose()
    second = PostgresStores(pg_url, schema=fresh_schema)
    try:
        assert await second.migrate() == SchemaVersion(len(MIGRATIONS), len(MIGRATIONS))
        assert await second.users.get(user(1).id) == user(1)
    finally:
        await second.aclose()


async def test_nodes_starting_at_once_migrate_exactly_once(
    pg_url: str, fresh_schema: str, admin: Admin
) -> None:
    """Six nodes start together on an empty schema: one migrates, five find it done."""
    starting = [PostgresStores(pg_url, schema=fresh_schema) for _ in range(6)]
    try:
        versions = await asyncio.gather(*(s.migrate() for s in starting))
        befores = sorted(v.before for v in versions)
        assert befores == [0] + [len(MIGRATIONS)] * 5
        await admin.execute(f"SET search_path = {fresh_schema}")
        applied = await admin.fetchval("SELECT count(*) FROM schema_migrations")
        assert applied == len(MIGRATIONS)
    finally:
        await close_all(starting)


async def test_a_later_migration_applies_on_top_once(
    pg_url: str, fresh_schema: str, admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = PostgresStores(pg_url, schema=fresh_schema)
    await first.start()
    await first.sessions.add(session("u1"))
    await first.aclose()
    newer = (*MIGRATIONS, "CREATE TABLE later (id integer PRIMARY KEY)")
    monkeypatch.setattr(schema_module, "MIGRATIONS", newer)
    for expected_before in (len(MIGRATIONS), len(newer)):
        stores = PostgresStores(pg_url, schema=fresh_schema)
        version = await stores.migrate()
        await stores.aclose()
        assert version == SchemaVersion(expected_before, len(newer))
    await admin.execute(f"SET search_path = {fresh_schema}")
    assert await admin.fetchval("SELECT count(*) FROM later") == 0
    assert await admin.fetchval("SELECT count(*) FROM sessions") == 1


async def test_a_newer_schema_is_refused_with_a_clear_error(
    pg_url: str, fresh_schema: str, admin: Admin
) -> None:
    first = PostgresStores(pg_url, schema=fresh_schema)
    await first.start()
    await first.aclose()
    await admin.execute(f"SET search_path = {fresh_schema}")
    await admin.execute("INSERT INTO schema_migrations (version) VALUES ($1)", len(MIGRATIONS) + 1)
    stores = PostgresStores(pg_url, schema=fresh_schema)
    with pytest.raises(ConfigurationError, match="newer than this velvetrope"):
        await stores.start()
    with pytest.raises(StoreUnavailable, match="not started"):
        await stores.sessions.get("0" * 64)
    await stores.aclose()


@pytest.mark.parametrize(
    "name", ["Public", "vr-test", "1abc", "pg_catalog", "a" * 64, 'x"; DROP SCHEMA public; --']
)
def test_schema_names_must_be_plain_identifiers(name: str) -> None:
    with pytest.raises(ConfigurationError, match="schema name"):
        PostgresStores(ADMIN_URL, schema=name)


@pytest.mark.parametrize(("min_size", "max_size"), [(2, 1), (-1, 5), (0, 0)])
def test_pool_sizes_must_make_sense(min_size: int, max_size: int) -> None:
    with pytest.raises(ConfigurationError, match="pool sizes"):
        PostgresStores(ADMIN_URL, min_size=min_size, max_size=max_size)


async def test_a_malformed_url_is_a_configuration_error_not_an_outage() -> None:
    stores = PostgresStores("postgresql://postgres@127.0.0.1:notaport/test")
    with pytest.raises(ConfigurationError, match="invalid PostgreSQL URL"):
        await stores.start()
    await stores.aclose()


# --- values ----------------------------------------------------------------------------


async def test_instants_round_trip_to_the_microsecond_and_come_back_in_utc(
    pg: DisposableStores, pg_url: str
) -> None:
    """Whatever zone a caller or the server uses, records hold the same instants, in UTC."""
    india = timezone(timedelta(hours=5, minutes=30))
    s = dataclasses.replace(
        session("u1"),
        created_at=datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=india),
        last_seen_at=datetime(2026, 1, 1, 12, 0, 1, 999999, tzinfo=india),
    )
    await pg.sessions.add(s)
    separator = "&" if "?" in pg_url else "?"
    elsewhere = PostgresStores(f"{pg_url}{separator}TimeZone=Pacific/Chatham", schema=pg.schema)
    await elsewhere.start()
    try:
        for reader in (pg, elsewhere):
            got = await reader.sessions.get(s.id_digest)
            assert got == s
            assert got is not None
            instants = (got.created_at, got.last_seen_at, got.expires_at, got.authenticated_at)
            assert all(i.tzinfo is UTC for i in instants)
            assert got.created_at.microsecond == 123456
    finally:
        await elsewhere.aclose()


async def test_constraint_violations_are_errors_not_outages(pg: DisposableStores) -> None:
    await pg.users.add(user(1))
    with pytest.raises(EmailTaken):
        await pg.users.add(user(2, email="user1@example.com"))
    with pytest.raises(asyncpg.UniqueViolationError):  # the same id: a bug, not "taken"
        await pg.users.add(user(1, email="other@example.com"))
    s = session("u1")
    await pg.sessions.add(s)
    with pytest.raises(asyncpg.UniqueViolationError):
        await pg.sessions.add(s)
    await pg.ping()


async def test_SESS_03_the_database_holds_digests_never_secrets(pg: DisposableStores) -> None:
    session_id, refresh_token = new_secret(), new_secret()
    await pg.sessions.add(session("u1", secret=session_id))
    await pg.refresh.create(family(), secret_digest(refresh_token))
    raw = await postgres_dump(pg)
    for secret in (session_id, refresh_token):
        assert secret_digest(secret).encode() in raw  # the dump is real ...
        assert secret.encode() not in raw  # ... and holds no raw secret


# --- many nodes at once ----------------------------------------------------------------


async def test_rotations_across_nodes_have_exactly_one_winner(pg: DisposableStores) -> None:
    """Four nodes (four pools) rotate one session and one refresh family at once."""
    old = session("u1", 0)
    await pg.sessions.add(old)
    await pg.refresh.create(family(), secret_digest(new_secret()))
    cluster = await nodes(pg.schema or "", 4)
    try:
        candidates = [session("u1", n) for n in range(1, 21)]
        won = await asyncio.gather(
            *(cluster[n % 4].sessions.rotate(old.id_digest, c) for n, c in enumerate(candidates))
        )
        assert won.count(True) == 1
        assert len(await pg.sessions.list_for_user("u1")) == 1
        won = await asyncio.gather(
            *(
                cluster[n % 4].refresh.rotate(
                    "f1", from_generation=0, digest=secret_digest(new_secret()), now=T0
                )
                for n in range(20)
            )
        )
        assert won.count(True) == 1
        rotated = await pg.refresh.get("f1")
        assert rotated is not None
        assert rotated.generation == 1
    finally:
        await close_all(cluster)


async def test_first_callers_on_every_node_share_one_secret(pg: DisposableStores) -> None:
    cluster = await nodes(pg.schema or "", 4)
    try:
        got = await asyncio.gather(
            *(cluster[n % 4].keys.secret("cookie", f"candidate-{n}") for n in range(16))
        )
        assert len(set(got)) == 1
    finally:
        await close_all(cluster)


async def test_nodes_rotating_keys_at_once_always_leave_a_signer(pg: DisposableStores) -> None:
    """Two nodes each add a key and retire the rest at once: neither retires the newer key."""
    old, mine, theirs = (
        KeyRecord(kid, "access", "EdDSA", "{}", T0 + timedelta(n))
        for n, kid in enumerate(("old", "mine", "theirs"))
    )
    await pg.keys.add_key(old)
    a, b = await nodes(pg.schema or "", 2)
    try:
        await asyncio.gather(a.keys.add_key(mine), b.keys.add_key(theirs))
        at, until = T0 + timedelta(3), T0 + timedelta(4)
        await asyncio.gather(
            a.keys.retire_keys("access", keep="mine", at=at, until=until),
            b.keys.retire_keys("access", keep="theirs", at=at, until=until),
        )
        signing = [k.kid for k in await pg.keys.list_keys("access") if k.retired_at is None]
        assert signing == ["theirs"]
    finally:
        await close_all([a, b])


async def test_concurrent_failures_from_every_node_are_all_counted(pg: DisposableStores) -> None:
    cluster = await nodes(pg.schema or "", 4)
    try:
        window = T0 - timedelta(hours=1)
        records = await asyncio.gather(
            *(
                cluster[n % 4].throttle.record_failure(
                    "k", T0 + timedelta(seconds=n), window_start=window
                )
                for n in range(40)
            )
        )
        assert sorted(r.count for r in records) == list(range(1, 41))
        final = await pg.throttle.get("k")
        assert final is not None
        assert final.count == 40
    finally:
        await close_all(cluster)


async def test_the_revocation_feed_never_skips_an_entry_under_concurrent_appends(
    pg: DisposableStores,
) -> None:
    """Nodes append at once while another replays with a cursor, as nodes do: the reader
    must see every entry. (Without ordered appends, a sequence number committed after a
    higher one is skipped for good.)"""
    writers = await nodes(pg.schema or "", 4, max_size=4)
    appended: list[int] = []
    seen: list[int] = []
    done = asyncio.Event()

    async def write(node: PostgresStores, n: int) -> None:
        for i in range(25):
            record = RevocationRecord("jti", f"j{n}-{i}", T0, T0 + timedelta(days=1))
            appended.append(await node.revocations.append(record))

    async def read() -> None:
        cursor = 0
        while True:
            finished = done.is_set()
            for sequence, _ in await pg.revocations.since(cursor):
                seen.append(sequence)
                cursor = max(cursor, sequence)
            if finished:
                return

    try:
        reader = asyncio.create_task(read())
        await asyncio.gather(*(write(node, n) for n, node in enumerate(writers * 2)))
        done.set()
        await reader
    finally:
        await close_all(writers)
    assert len(appended) == 200
    assert sorted(seen) == sorted(appended)


# --- notifications ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def listening(stores: PostgresStores) -> AsyncIterator[asyncio.Queue[str]]:
    """Run ``stores.notifier.listen`` in a task; yield the topics it hears."""
    inbox: asyncio.Queue[str] = asyncio.Queue()

    async def on_change(topic: str) -> None:
        inbox.put_nowait(topic)

    task = asyncio.create_task(stores.notifier.listen(on_change))
    try:
        yield inbox
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def heard(
    sender: PostgresStores, inbox: asyncio.Queue[str], topic: str, seconds: float = 10.0
) -> None:
    """Publish ``topic`` until it arrives (a listener still connecting misses some)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(StoreUnavailable):
            await sender.notifier.publish(topic)
        with contextlib.suppress(TimeoutError):
            while await within(0.1, inbox.get()) != topic:
                pass
            return
    pytest.fail(f"{topic!r} was never heard")


async def test_notifications_reach_every_node_the_sender_included(pg: DisposableStores) -> None:
    (other,) = await nodes(pg.schema or "", 1)
    try:
        async with listening(pg) as mine, listening(other) as theirs:
            await heard(pg, mine, "ready")
            await heard(pg, theirs, "ready")
            await other.notifier.publish("revocations")
            for inbox in (mine, theirs):
                while (topic := await within(5, inbox.get())) == "ready":
                    pass
                assert topic == "revocations"
    finally:
        await other.aclose()


async def test_installations_in_other_schemas_hear_nothing(pg: DisposableStores) -> None:
    elsewhere = DisposableStores()
    await elsewhere.start()
    try:
        assert elsewhere.notifier.channel != pg.notifier.channel
        async with listening(pg) as inbox:
            await heard(pg, inbox, "ready")
            await elsewhere.notifier.publish("theirs")
            await pg.notifier.publish("mine")
            while (topic := await within(5, inbox.get())) == "ready":
                pass
            assert topic == "mine"
    finally:
        await elsewhere.aclose()


def test_channel_names_fit_postgresql_limits() -> None:
    assert channel_name(None) == "velvetrope"
    assert channel_name("auth") == "velvetrope.auth"
    long_a, long_b = "a" * 63, "a" * 62 + "b"
    assert len(channel_name(long_a)) <= 63
    assert channel_name(long_a) != channel_name(long_b)


async def test_a_failing_re_read_is_logged_and_listening_goes_on(
    pg: DisposableStores, caplog: pytest.LogCaptureFixture
) -> None:
    inbox: asyncio.Queue[str] = asyncio.Queue()

    async def on_change(topic: str) -> None:
        inbox.put_nowait(topic)
        if topic == "fails":
            raise StoreUnavailable("re-read failed")

    task = asyncio.create_task(pg.notifier.listen(on_change))
    try:
        await heard(pg, inbox, "fails")
        await heard(pg, inbox, "after")
        assert "re-reading fails after a notification failed" in caplog.text
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_cancelling_the_listener_closes_its_connection(admin: Admin) -> None:
    count_listeners = (  # the listener's last statement (heartbeats come every 15 s)
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN \"' || $1 || '\"'"
    )
    pg = DisposableStores(session_cache_ttl=timedelta(0))  # no listener of the cache's
    await pg.start()
    try:
        async with listening(pg) as inbox:
            await heard(pg, inbox, "ready")
            assert await admin.fetchval(count_listeners, pg.notifier.channel) == 1
        deadline = time.monotonic() + 5
        while await admin.fetchval(count_listeners, pg.notifier.channel):
            assert time.monotonic() < deadline, "the listening connection stayed open"
            await asyncio.sleep(0.05)
    finally:
        await pg.aclose()


# --- failing closed --------------------------------------------------------------------


async def test_calls_before_start_and_after_close_fail_closed(
    pg_url: str, fresh_schema: str
) -> None:
    stores = PostgresStores(pg_url, schema=fresh_schema)
    with pytest.raises(StoreUnavailable, match="not started"):
        await stores.sessions.get("0" * 64)
    await stores.start()
    await stores.start()  # a no-op once started
    await stores.ping()
    await stores.aclose()
    await stores.aclose()  # idempotent
    with pytest.raises(StoreUnavailable):
        await stores.sessions.get("0" * 64)
    with pytest.raises(StoreUnavailable):
        await stores.ping()


async def test_nothing_listening_fails_closed_at_once() -> None:
    stores = PostgresStores(f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cannot connect to PostgreSQL"):
        await stores.start()
    assert time.monotonic() - started < QUICKLY
    await stores.aclose()


async def test_a_server_that_never_answers_fails_closed_after_the_connect_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # until the client gives up
        finally:
            writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        stores = PostgresStores(
            f"postgresql://postgres@127.0.0.1:{port}/test", connect_timeout=timedelta(seconds=0.3)
        )
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="TimeoutError"):
            await stores.start()
        assert time.monotonic() - started < QUICKLY
        await stores.aclose()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_blocked_statement_and_an_exhausted_pool_fail_closed_in_time(
    pg: DisposableStores, admin: Admin
) -> None:
    """A statement stuck on a lock fails after ``command_timeout``; a caller that finds no
    free connection fails after ``acquire_timeout``. Neither waits forever."""
    s = session("u1")
    await pg.sessions.add(s)
    (node,) = await nodes(
        pg.schema or "",
        1,
        max_size=1,
        command_timeout=timedelta(seconds=0.6),
        acquire_timeout=timedelta(seconds=0.2),
    )
    try:
        async with admin.transaction():
            await admin.execute(f"LOCK TABLE {pg.schema}.sessions IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            stuck = asyncio.create_task(node.sessions.get(s.id_digest))
            await asyncio.sleep(0.05)  # the stuck call holds the only connection
            with pytest.raises(StoreUnavailable, match="TimeoutError"):
                await node.users.get("u1")
            assert not stuck.done()  # the acquire timeout fired first, not the stuck call's
            with pytest.raises(StoreUnavailable, match="TimeoutError"):
                await stuck
            assert time.monotonic() - started < QUICKLY
        assert await node.sessions.get(s.id_digest) == s  # the lock is gone: all is well
    finally:
        await node.aclose()


# --- outages and restarts of the server ------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[TempCluster]:
    """A private PostgreSQL server (initdb + pg_ctl) these tests may stop and start."""
    with running_cluster() as server:
        yield server


@pytest.fixture
async def on_cluster(cluster: TempCluster) -> AsyncIterator[PostgresStores]:
    """Started stores on the private server, with short timeouts; the server is left running."""
    stores = PostgresStores(
        cluster.url,
        schema=new_schema_name(),
        connect_timeout=timedelta(seconds=2),
        acquire_timeout=timedelta(seconds=2),
    )
    await stores.start()
    yield stores
    await stores.aclose()
    if not await asyncio.to_thread(cluster.is_running):
        await asyncio.to_thread(cluster.start)


async def test_an_outage_fails_closed_quickly_and_recovers_without_a_restart(
    cluster: TempCluster, on_cluster: PostgresStores
) -> None:
    stores = on_cluster
    s = session("u1")
    await stores.users.add(user(1))
    await stores.sessions.add(s)
    await stores.refresh.create(family(), secret_digest(token := new_secret()))
    revocation = RevocationRecord("jti", "j1", T0, T0 + timedelta(days=1))

    await asyncio.to_thread(cluster.stop, "fast")
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "ping": stores.ping,
        "sessions.get": lambda: stores.sessions.get(s.id_digest),
        "sessions.touch": lambda: stores.sessions.touch(s.id_digest, T0),
        "sessions.rotate": lambda: stores.sessions.rotate(s.id_digest, session("u1", 2)),
        "sessions.list_for_user": lambda: stores.sessions.list_for_user("u1"),
        "users.get_by_email": lambda: stores.users.get_by_email(user(1).email),
        "users.add": lambda: stores.users.add(user(2)),
        "throttle.record_failure": lambda: stores.throttle.record_failure("k", T0, window_start=T0),
        "refresh.find": lambda: stores.refresh.find(secret_digest(token)),
        "refresh.rotate": lambda: stores.refresh.rotate(
            "f1", from_generation=0, digest=secret_digest(new_secret()), now=T0
        ),
        "revocations.append": lambda: stores.revocations.append(revocation),
        "revocations.since": lambda: stores.revocations.since(0),
        "keys.list_keys": lambda: stores.keys.list_keys("access"),
        "keys.secret": lambda: stores.keys.secret("s", "candidate"),
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await call()
        assert time.monotonic() - started < QUICKLY, name

    await asyncio.to_thread(cluster.start)
    # The same object, no restart: the very first call after the outage succeeds.
    assert await stores.sessions.get(s.id_digest) == s
    await stores.ping()
    assert await stores.sessions.rotate(s.id_digest, session("u1", 2))
    assert await stores.refresh.rotate(
        "f1", from_generation=0, digest=secret_digest(new_secret()), now=T0
    )
    assert await stores.revocations.since(0) == []  # the failed append wrote nothing


async def test_the_listener_resumes_by_itself_after_an_outage(
    cluster: TempCluster, on_cluster: PostgresStores
) -> None:
    async with listening(on_cluster) as inbox:
        await heard(on_cluster, inbox, "before")
        await asyncio.to_thread(cluster.stop, "fast")
        with pytest.raises(StoreUnavailable):
            await on_cluster.notifier.publish("lost")
        await asyncio.to_thread(cluster.start)
        await heard(on_cluster, inbox, "after")


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_restart_of_postgresql_loses_no_session(
    cluster: TempCluster, on_cluster: PostgresStores, mode: str
) -> None:
    """Write, restart the server (cleanly, or ``immediate``: as a crash, with WAL replay),
    read: everything committed is there, through the same stores and through new ones."""
    stores = on_cluster
    s = session("u1")
    await stores.users.add(user(1))
    await stores.sessions.add(s)
    await stores.refresh.create(family(), secret_digest(token := new_secret()))
    sequence = await stores.revocations.append(
        RevocationRecord("user", "u1", T0, T0 + timedelta(days=1))
    )

    await asyncio.to_thread(cluster.stop, mode)
    await asyncio.to_thread(cluster.start)

    assert await stores.sessions.get(s.id_digest) == s
    assert await stores.users.get(user(1).id) == user(1)
    assert await stores.refresh.find(secret_digest(token)) == (family(), 0)
    reopened = PostgresStores(cluster.url, schema=stores.schema)
    try:
        assert (await reopened.migrate()).before == len(MIGRATIONS)
        assert await reopened.sessions.get(s.id_digest) == s
        assert [n for n, _ in await reopened.revocations.since(0)] == [sequence]
    finally:
        await reopened.aclose()


async def test_start_while_the_server_is_down_fails_closed_and_can_be_retried(
    cluster: TempCluster, on_cluster: PostgresStores
) -> None:
    await asyncio.to_thread(cluster.stop, "fast")
    stores = PostgresStores(
        cluster.url, schema=on_cluster.schema, connect_timeout=timedelta(seconds=2)
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cannot connect to PostgreSQL"):
        await stores.start()
    assert time.monotonic() - started < QUICKLY
    await asyncio.to_thread(cluster.start)
    await stores.start()
    try:
        await stores.ping()
    finally:
        await stores.aclose()


# --- velvetrope migrate ----------------------------------------------------------------


@pytest.fixture
def database_url(
    pg_url: str, no_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh database on the shared server (dropped after), for the command line."""
    monkeypatch.chdir(tmp_path)
    name = f"velvetrope_test_{secrets.token_hex(6)}"

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_sql(f"CREATE DATABASE {name}"))
    try:
        yield pg_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def test_migrate_command_migrates_once_and_reports_the_version(database_url: str) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["migrate", "--database", database_url])
    assert first.exit_code == 0, first.output
    assert f"schema version {len(MIGRATIONS)} (migrated from version 0)" in first.stdout
    again = runner.invoke(app, ["migrate", "--database", database_url])
    assert again.exit_code == 0, again.output
    assert f"schema version {len(MIGRATIONS)} (up to date)" in again.stdout
    assert "postgres@" not in first.stdout + again.stdout  # no credentials echoed


def test_migrate_command_on_an_unreachable_server_is_a_one_line_error(no_env: None) -> None:
    url = f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/test"
    result = CliRunner().invoke(app, ["migrate", "--database", url])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: cannot reach PostgreSQL")
    assert "hunter2" not in result.output


def test_migrate_command_on_sqlite_reports_the_sqlite_version(no_env: None, tmp_path: Path) -> None:
    from velvetrope.stores.sqlite.schema import MIGRATIONS as SQLITE  # noqa: PLC0415

    database = str(tmp_path / "vr.db")
    runner = CliRunner()
    first = runner.invoke(app, ["migrate", "--database", database])
    assert first.exit_code == 0, first.output
    assert f"schema version {len(SQLITE)} (migrated from version 0)" in first.stdout
    again = runner.invoke(app, ["migrate", "--database", database])
    assert f"schema version {len(SQLITE)} (up to date)" in again.stdout


def test_migrate_command_refuses_memory(no_env: None) -> None:
    result = CliRunner().invoke(app, ["migrate", "--database", "memory://"])
    assert result.exit_code == 1
    assert "memory:// has no schema to migrate" in result.stderr
