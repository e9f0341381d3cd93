"""``velvetrope events USER``: the persisted security log, as operators read it."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import Cli, Database, assert_one_line_error
from tests.support.services import PASSWORD
from velvetrope import AuthService, InvalidCredentials


def _sign_in_twice_and_fail_once(db: Database) -> None:
    async def work(service: AuthService) -> None:
        await service.login("ann@example.com", PASSWORD, ip="198.51.100.4", user_agent="Firefox")
        await service.token_login("ann@example.com", PASSWORD, ip="2001:db8::1", user_agent="cli")
        with pytest.raises(InvalidCredentials):
            await service.login("ann@example.com", "not the password!!", ip="203.0.113.66")

    db.run(work)


def test_LOG_05_events_lists_sign_ins_failures_and_admin_actions(cli: Cli, db: Database) -> None:
    user = db.register("ann@example.com")
    _sign_in_twice_and_fail_once(db)
    cli.ok("users", "disable", "ann@example.com")
    out = cli.ok("events", user.id)
    for text in ("login_succeeded", "login_failed", "user_disabled", "198.51.100.4", "Firefox"):
        assert text in out, out
    assert "ann@example.com" in out  # the title
    assert PASSWORD not in out


def test_events_json_is_a_list_newest_first_with_public_fields(cli: Cli, db: Database) -> None:
    db.register("ann@example.com")
    _sign_in_twice_and_fail_once(db)
    found = json.loads(cli.ok("events", "ann@example.com", "--json", "--event", "login_succeeded"))
    assert [e["event"] for e in found] == ["login_succeeded", "login_succeeded"]
    assert {e["ip"] for e in found} == {"198.51.100.4", "2001:db8::1"}
    assert set(found[0]) == {"id", "at", "event", "subject", "ip", "user_agent", "handle", "detail"}
    limited = json.loads(cli.ok("events", "ann@example.com", "--json", "--limit", "1"))
    assert len(limited) == 1


def test_an_unknown_event_kind_or_user_is_one_sentence(cli: Cli, db: Database) -> None:
    db.register("ann@example.com")
    assert_one_line_error(
        cli("events", "ann@example.com", "--event", "nonsense"), says="unknown event", exit_code=2
    )
    assert_one_line_error(cli("events", "bob@example.com"), says="No user")
