"""The revocation epoch: processes on one SQLite file see each other's revocations on
their very next check, with no replay in between (checklist OPS-W1)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.support.services import PASSWORD, new_service, running
from velvetrope import AuthService, FrozenClock, PasswordHasher
from velvetrope.errors import InvalidToken
from velvetrope.stores import MemoryStores, SQLiteStores
from velvetrope.stores.sqlite.epoch import RevocationEpoch

EMAIL = "ann@example.com"


async def test_OPS_W1_a_token_revoked_by_one_worker_is_refused_by_the_other_at_once(
    nodes: tuple[AuthService, AuthService],
) -> None:
    """RFC 7009 revocation of one access token, cached by the other worker beforehand."""
    a, b = nodes
    await a.register(EMAIL, PASSWORD)
    pair = await a.token_login(EMAIL, PASSWORD)
    await b.authenticate_bearer(pair.access_token)  # verified and cached on B
    assert not b.tokens.revocations.behind()
    await a.revoke_token(pair.access_token)
    assert b.tokens.revocations.behind()
    with pytest.raises(InvalidToken):
        await b.authenticate_bearer(pair.access_token)
    assert not b.tokens.revocations.behind()  # replayed once, caught up


async def test_OPS_W1_a_family_and_a_user_cut_off_elsewhere_are_refused_at_once(
    nodes: tuple[AuthService, AuthService],
) -> None:
    """Ending a device (family) and disabling the user (user cut-off) through A."""
    a, b = nodes
    user = await a.register(EMAIL, PASSWORD)
    first = await a.token_login(EMAIL, PASSWORD)
    second = await a.token_login(EMAIL, PASSWORD)
    for pair in (first, second):
        await b.authenticate_bearer(pair.access_token)
    await a.revoke_family(first.family.id)
    with pytest.raises(InvalidToken):
        await b.authenticate_bearer(first.access_token)
    await b.authenticate_bearer(second.access_token)  # another device is untouched
    await a.disable_user(user.id)
    with pytest.raises(InvalidToken):
        await b.authenticate_bearer(second.access_token)


async def test_OPS_W1_a_revocation_by_the_cli_reaches_a_running_worker(
    nodes: tuple[AuthService, AuthService],
    tmp_path: Path,
    clock: FrozenClock,
    hasher: PasswordHasher,
) -> None:
    """A third process opened after the workers (``velvetrope users disable``)."""
    a, _ = nodes
    user = await a.register(EMAIL, PASSWORD)
    pair = await a.token_login(EMAIL, PASSWORD)
    await a.authenticate_bearer(pair.access_token)
    cli = new_service(SQLiteStores(tmp_path / "vr.db"), clock=clock, hasher=hasher)
    async with running(cli):
        await cli.disable_user(user.id)
    with pytest.raises(InvalidToken):
        await a.authenticate_bearer(pair.access_token)


def test_the_epoch_file_is_shared_owner_only_and_starts_at_zero(tmp_path: Path) -> None:
    path = tmp_path / "vr.db-epoch"
    writer, reader = RevocationEpoch(path), RevocationEpoch(path)
    try:
        assert reader.read() == 0
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        writer.publish(41)
        assert reader.read() == 41
        writer.publish(7)  # a racing append that lands last: still a move
        assert reader.read() == 7
    finally:
        writer.close()
        reader.close()


async def test_stores_without_an_epoch_are_never_behind(
    clock: FrozenClock, hasher: PasswordHasher
) -> None:
    async with running(new_service(MemoryStores(), clock=clock, hasher=hasher)) as service:
        assert not service.tokens.revocations.behind()


async def test_an_in_memory_sqlite_database_has_no_epoch_file(
    clock: FrozenClock, hasher: PasswordHasher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    stores = SQLiteStores(":memory:")
    async with running(new_service(stores, clock=clock, hasher=hasher)):
        assert stores.revocations.epoch is None
    assert _files(tmp_path) == []


def _files(folder: Path) -> list[Path]:
    return list(folder.iterdir())


def test_OPS_W1_a_closed_epoch_reads_as_moved_so_readers_replay_and_fail_closed(
    tmp_path: Path,
) -> None:
    epoch = RevocationEpoch(tmp_path / "vr.db-epoch")
    epoch.publish(5)
    epoch.close()
    assert epoch.read() == -1  # never a sequence number: whoever holds it replays
