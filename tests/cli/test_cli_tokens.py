"""The CLI and token families/keys: revoke reaches tokens; read-only commands never rotate."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Cli, Database
from tests.support.services import PASSWORD
from velvetrope import AuthService, InvalidGrant, InvalidToken, TokenPair


def token_pair(db: Database, email: str) -> TokenPair:
    async def work(service: AuthService) -> TokenPair:
        return await service.token_login(email, PASSWORD)

    return db.run(work)


def bearer_works(db: Database, token: str) -> bool:
    async def work(service: AuthService) -> bool:
        try:
            await service.authenticate_bearer(token)
        except InvalidToken:
            return False
        return True

    return db.run(work)


def test_TERM_03_sessions_revoke_all_also_ends_token_families(cli: Cli, db: Database) -> None:
    db.register("ann@example.com")
    pair = token_pair(db, "ann@example.com")
    assert bearer_works(db, pair.access_token)
    out = cli.ok("sessions", "revoke", "ann@example.com", "--all")
    assert "ended 1" in out
    assert not bearer_works(db, pair.access_token)

    async def refresh(service: AuthService) -> None:
        with pytest.raises(InvalidGrant):
            await service.tokens.refresh_grant(pair.refresh_token)

    db.run(refresh)


def test_sessions_list_and_revoke_by_handle_cover_token_families(cli: Cli, db: Database) -> None:
    db.register("ann@example.com")
    pair = token_pair(db, "ann@example.com")
    assert pair.family.id in cli.ok("sessions", "list", "ann@example.com")
    cli.ok("sessions", "revoke", "ann@example.com", pair.family.id)
    assert not bearer_works(db, pair.access_token)


def test_read_only_commands_never_rotate_the_signing_key(
    cli: Cli, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.register("ann@example.com")  # the first start made a key
    before = cli.ok("keys", "list")
    monkeypatch.setenv("VELVETROPE_TOKEN_ALGORITHM", "ES256")  # a due rotation, if any ran
    cli.ok("users", "list")
    cli.ok("sessions", "list", "ann@example.com")
    assert cli.ok("keys", "list") == before


def test_keys_list_prints_whole_kids(cli: Cli, db: Database) -> None:
    db.register("ann@example.com")

    async def kid(service: AuthService) -> str:
        return service.tokens.keys.signing_key.kid

    assert db.run(kid) in cli.ok("keys", "list", columns="60")
