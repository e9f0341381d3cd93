"""One contract suite, run against every store backend (docs/style.md rule 4).

Each test runs once per backend in ``tests.conftest.BACKENDS``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.postgres import postgres_dump
from tests.support.redis import RedisTestStores
from tests.support.stores import open_backend
from velvetrope.core.ids import new_secret, secret_digest
from velvetrope.errors import EmailTaken
from velvetrope.stores import PostgresStores, SQLiteStores, Stores
from velvetrope.stores.records import SessionRecord, UserRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def user(n: int = 1, **changes: object) -> UserRecord:
    base = UserRecord(
        id=f"00000000-0000-4000-8000-{n:012d}",
        email=f"user{n}@example.com",
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaA",
        created_at=T0 + timedelta(seconds=n),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def session(user_id: str, n: int = 1, *, secret: str | None = None) -> SessionRecord:
    secret = secret or new_secret()
    return SessionRecord(
        id_digest=secret_digest(secret),
        handle=f"handle{n:018d}",
        user_id=user_id,
        created_at=T0 + timedelta(seconds=n),
        last_seen_at=T0 + timedelta(seconds=n),
        expires_at=T0 + timedelta(hours=12, seconds=n),
        authenticated_at=T0 + timedelta(seconds=n),
        ip="192.0.2.1",
        user_agent="agent",
    )


# --- users -----------------------------------------------------------------


async def test_user_round_trips(stores: Stores) -> None:
    await stores.users.add(user(1))
    assert await stores.users.get(user(1).id) == user(1)
    assert await stores.users.get_by_email("user1@example.com") == user(1)
    assert await stores.users.get("missing") is None
    assert await stores.users.get_by_email("missing@example.com") is None


async def test_user_email_is_unique(stores: Stores) -> None:
    await stores.users.add(user(1))
    with pytest.raises(EmailTaken):
        await stores.users.add(user(2, email="user1@example.com"))
    assert await stores.users.get(user(2).id) is None


async def test_user_updates(stores: Stores) -> None:
    await stores.users.add(user(1))
    await stores.users.set_password_hash(user(1).id, "$argon2id$new")
    await stores.users.set_disabled(user(1).id, True)
    stored = await stores.users.get(user(1).id)
    assert stored is not None
    assert stored.password_hash == "$argon2id$new"
    assert stored.disabled is True


async def test_user_list_in_creation_order_with_paging(stores: Stores) -> None:
    for n in (3, 1, 2):
        await stores.users.add(user(n))
    assert [u.email for u in await stores.users.list()] == [
        "user1@example.com",
        "user2@example.com",
        "user3@example.com",
    ]
    assert [u.email for u in await stores.users.list(limit=1, offset=1)] == ["user2@example.com"]


# --- sessions ----------------------------------------------------------------


async def test_session_round_trips(stores: Stores) -> None:
    s = session("u1")
    await stores.sessions.add(s)
    assert await stores.sessions.get(s.id_digest) == s


async def test_SESS_05_unknown_digest_is_none_and_creates_nothing(stores: Stores) -> None:
    """Strict mode: looking up an ID never issued creates no record."""
    digest = secret_digest(new_secret())
    assert await stores.sessions.get(digest) is None
    assert await stores.sessions.touch(digest, T0) is False
    assert await stores.sessions.get(digest) is None
    assert await stores.sessions.list_for_user("u1") == []


async def test_SESS_09_touch_never_resurrects_a_deleted_session(stores: Stores) -> None:
    """Two contexts load one session; A deletes it; B's later save must not bring it back."""
    s = session("u1")
    await stores.sessions.add(s)
    loaded_by_b = await stores.sessions.get(s.id_digest)
    assert loaded_by_b is not None
    assert await stores.sessions.delete(s.id_digest) is True
    assert await stores.sessions.touch(s.id_digest, T0 + timedelta(minutes=1)) is False
    assert await stores.sessions.get(s.id_digest) is None


async def test_touch_updates_only_last_seen(stores: Stores) -> None:
    s = session("u1")
    await stores.sessions.add(s)
    later = T0 + timedelta(minutes=5)
    assert await stores.sessions.touch(s.id_digest, later) is True
    assert await stores.sessions.get(s.id_digest) == dataclasses.replace(s, last_seen_at=later)


async def test_rotate_replaces_old_with_new(stores: Stores) -> None:
    old, new = session("u1", 1), session("u1", 2)
    await stores.sessions.add(old)
    assert await stores.sessions.rotate(old.id_digest, new) is True
    assert await stores.sessions.get(old.id_digest) is None
    assert await stores.sessions.get(new.id_digest) == new


async def test_rotate_of_missing_session_writes_nothing(stores: Stores) -> None:
    new = session("u1", 2)
    assert await stores.sessions.rotate(secret_digest(new_secret()), new) is False
    assert await stores.sessions.get(new.id_digest) is None


async def test_SESS_10_concurrent_rotations_have_exactly_one_winner(stores: Stores) -> None:
    old = session("u1", 0)
    await stores.sessions.add(old)
    candidates = [session("u1", n) for n in range(1, 21)]
    results = await asyncio.gather(*(stores.sessions.rotate(old.id_digest, c) for c in candidates))
    assert results.count(True) == 1
    assert len(await stores.sessions.list_for_user("u1")) == 1


async def test_delete_by_handle_is_scoped_to_the_owner(stores: Stores) -> None:
    mine, theirs = session("u1", 1), session("u2", 2)
    await stores.sessions.add(mine)
    await stores.sessions.add(theirs)
    assert await stores.sessions.delete_by_handle("u1", theirs.handle) is False
    assert await stores.sessions.get(theirs.id_digest) == theirs
    assert await stores.sessions.delete_by_handle("u1", mine.handle) is True
    assert await stores.sessions.get(mine.id_digest) is None


async def test_per_user_index_lists_oldest_first_and_deletes_all_but_kept(stores: Stores) -> None:
    sessions = [session("u1", n) for n in (3, 1, 2)]
    other = session("u2", 9)
    for s in [*sessions, other]:
        await stores.sessions.add(s)
    listed = await stores.sessions.list_for_user("u1")
    assert [s.handle for s in listed] == [f"handle{n:018d}" for n in (1, 2, 3)]
    assert await stores.sessions.delete_for_user("u1", keep=listed[0].id_digest) == 2
    assert [s.handle for s in await stores.sessions.list_for_user("u1")] == [listed[0].handle]
    assert await stores.sessions.delete_for_user("u1") == 1
    assert await stores.sessions.list_for_user("u1") == []
    assert await stores.sessions.get(other.id_digest) == other


async def test_purge_expired_deletes_only_past_absolute_expiry(stores: Stores) -> None:
    early, late = session("u1", 1), session("u1", 2)
    await stores.sessions.add(early)
    await stores.sessions.add(late)
    assert await stores.sessions.purge_expired(early.expires_at) == 1
    assert await stores.sessions.get(early.id_digest) is None
    assert await stores.sessions.get(late.id_digest) == late


# --- throttle counters -------------------------------------------------------------


async def test_failures_count_up_within_the_window_and_restart_after(stores: Stores) -> None:
    window_start = T0 - timedelta(hours=1)
    first = await stores.throttle.record_failure("k", T0, window_start=window_start)
    second = await stores.throttle.record_failure(
        "k", T0 + timedelta(seconds=1), window_start=window_start
    )
    assert (first.count, second.count) == (1, 2)
    assert second.first_at == T0
    assert second.last_at == T0 + timedelta(seconds=1)
    later = T0 + timedelta(hours=2)
    restarted = await stores.throttle.record_failure(
        "k", later, window_start=later - timedelta(hours=1)
    )
    assert (restarted.count, restarted.first_at) == (1, later)
    assert await stores.throttle.get("k") == restarted
    await stores.throttle.clear("k")
    assert await stores.throttle.get("k") is None


async def test_ping_answers(stores: Stores) -> None:
    await stores.ping()


# --- SESS-03: no raw secret at rest -------------------------------------------------


def _sqlite_dump(path: Path) -> bytes:
    """Every byte of the database: its files (WAL included) and a logical dump."""
    conn = sqlite3.connect(path)
    try:
        dump = "\n".join(conn.iterdump()).encode()
    finally:
        conn.close()
    files = [path, *path.parent.glob(path.name + "-*")]
    return dump + b"".join(f.read_bytes() for f in files if f.exists())


async def test_SESS_03_store_holds_only_the_digest(backend: str, tmp_path: Path) -> None:
    """Dump what the backend holds; the raw session ID must not be in it anywhere."""
    stores = open_backend(backend, tmp_path)
    await stores.start()
    secret = new_secret()
    await stores.sessions.add(session("u1", secret=secret))
    if isinstance(stores, SQLiteStores):
        await stores.aclose()
        raw = _sqlite_dump(tmp_path / "velvetrope.db")
    elif isinstance(stores, RedisTestStores):
        raw = await stores.dump()
        await stores.aclose()
    elif isinstance(stores, PostgresStores):
        raw = await postgres_dump(stores)
        await stores.aclose()
    else:
        raw = repr(vars(stores.sessions)).encode()
        await stores.aclose()
    assert secret_digest(secret).encode() in raw  # the dump is real ...
    assert secret.encode() not in raw  # ... and holds no raw ID
