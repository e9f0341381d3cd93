"""Claims and account hooks in the core: the rules claims must pass, and what a failing
hook does (the claims hook fails the operation; an account hook is only logged)."""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

import pytest

from tests.support.services import PASSWORD
from tests.support.stores import every_backend
from velvetrope import AccountEvent, AuthService, FrozenClock, Hooks, InvalidClaims, InvalidGrant
from velvetrope.core.claims import RESERVED_CLAIMS, check_claims
from velvetrope.stores.records import UserRecord


@pytest.fixture
def hooks(service: AuthService) -> Hooks:
    return service.hooks


def test_LIB_03_every_reserved_name_is_refused() -> None:
    for name in sorted(RESERVED_CLAIMS):
        with pytest.raises(InvalidClaims, match=name):
            check_claims({name: "x", "roles": []}, max_bytes=2048)


@pytest.mark.parametrize(
    "claims",
    [
        {"n": math.nan},
        {"n": [math.inf]},
        {"set": {1, 2}},
        {"bytes": b"x"},
        {"nested": {1: "non-string key"}},
    ],
)
def test_LIB_04_claims_must_be_plain_json(claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidClaims, match="must be JSON"):
        check_claims(claims, max_bytes=2048)


def test_LIB_04_claims_past_the_cap_are_refused_with_the_sizes() -> None:
    claims = {"blob": "x" * 2100}
    with pytest.raises(InvalidClaims, match=r"2111 bytes as JSON, over the 2048-byte cap"):
        check_claims(claims, max_bytes=2048)
    assert check_claims(claims, max_bytes=4096) == claims


def test_claims_of_any_json_shape_pass() -> None:
    claims = {"roles": ["admin"], "scope": "orders:read", "dept": {"id": 7, "ok": True}, "n": None}
    assert check_claims(claims, max_bytes=2048) == claims


@every_backend
async def test_claims_reach_the_session_and_the_tokens(
    service: AuthService, hooks: Hooks, user_email: str
) -> None:
    @hooks.claims
    async def claims(user: UserRecord) -> dict[str, Any]:
        return {"roles": ["admin"], "owner": user.email, "dept": {"id": 7, "name": "Zürich"}}

    sign_in = await service.login(user_email, PASSWORD)
    principal = await service.authenticate(sign_in.session.secret)
    assert (principal.email, dict(principal.claims)) == (
        user_email,
        {"roles": ["admin"], "owner": user_email, "dept": {"id": 7, "name": "Zürich"}},
    )
    [stored] = await service.sessions.list(principal.user_id)  # read back from the store
    assert (stored.email, dict(stored.claims)) == (principal.email, dict(principal.claims))
    pair = await service.token_login(user_email, PASSWORD)
    bearer = await service.authenticate_bearer(pair.access_token)
    assert (bearer.email, dict(bearer.claims)) == (principal.email, dict(principal.claims))


async def test_refresh_recomputes_the_claims(
    service: AuthService, hooks: Hooks, user_email: str
) -> None:
    roles = ["reader"]

    @hooks.claims
    async def claims(_: UserRecord) -> dict[str, Any]:
        return {"roles": list(roles)}

    pair = await service.token_login(user_email, PASSWORD)
    roles.append("writer")
    renewed = await service.refresh_grant(pair.refresh_token)
    principal = await service.authenticate_bearer(renewed.access_token)
    assert principal.claims["roles"] == ["reader", "writer"]


async def test_LIB_03_a_reserved_claim_fails_the_sign_in_and_issues_nothing(
    service: AuthService, hooks: Hooks, user_email: str
) -> None:
    @hooks.claims
    async def claims(_: UserRecord) -> dict[str, Any]:
        return {"sub": "someone-else"}

    with pytest.raises(InvalidClaims, match="reserved name"):
        await service.login(user_email, PASSWORD)
    with pytest.raises(InvalidClaims):
        await service.token_login(user_email, PASSWORD)
    user = await service.find_user(user_email)
    assert await service.devices(user.id) == []


async def test_LIB_04_a_failing_claims_hook_fails_the_sign_in(
    service: AuthService, hooks: Hooks, user_email: str, caplog: pytest.LogCaptureFixture
) -> None:
    @hooks.claims
    async def claims(_: UserRecord) -> dict[str, Any]:
        raise KeyError("roles")

    with (
        caplog.at_level(logging.ERROR, logger="velvetrope.hooks"),
        pytest.raises(InvalidClaims, match="KeyError"),
    ):
        await service.login(user_email, PASSWORD)
    assert "the claims hook failed" in caplog.text


async def test_account_hooks_see_each_event(
    service: AuthService, hooks: Hooks, clock: FrozenClock
) -> None:
    seen: list[AccountEvent] = []

    async def record(event: AccountEvent) -> None:
        seen.append(event)

    for kind in ("registered", "signed_in", "signed_out", "password_changed", "refresh_reused"):
        hooks.on(kind, record)
    bob = await service.register("bob@example.com", PASSWORD, ip="192.0.2.1")
    sign_in = await service.login("bob@example.com", PASSWORD, ip="192.0.2.1")
    principal = await service.authenticate(sign_in.session.secret)
    await service.change_password(principal, sign_in.session.secret, PASSWORD, PASSWORD + "!")
    pair = await service.token_login("bob@example.com", PASSWORD + "!")
    await service.refresh_grant(pair.refresh_token)
    clock.advance(timedelta(seconds=11))  # past the refresh grace: a reuse is theft
    with pytest.raises(InvalidGrant):
        await service.refresh_grant(pair.refresh_token)  # reused: theft
    await service.sign_out_everywhere(bob.id)
    assert [(e.kind, e.method) for e in seen] == [
        ("registered", ""),
        ("signed_in", "session"),
        ("password_changed", ""),
        ("signed_in", "token"),
        ("refresh_reused", ""),
        ("signed_out", ""),
    ]
    assert (seen[0].ip, seen[0].email) == ("192.0.2.1", "bob@example.com")
    assert seen[1].device == sign_in.session.record.handle
    assert seen[3].device == seen[4].device == pair.family.id
    assert seen[4].user_id == bob.id
    assert seen[5].all_devices


async def test_LIB_06_a_failing_account_hook_is_logged_and_changes_nothing(
    service: AuthService, hooks: Hooks, user_email: str, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    @hooks.on_sign_in
    async def broken(_: AccountEvent) -> None:
        raise RuntimeError("the audit service is down")

    @hooks.on_sign_in
    async def after(event: AccountEvent) -> None:
        ran.append(event.user_id)

    with caplog.at_level(logging.ERROR, logger="velvetrope.hooks"):
        sign_in = await service.login(user_email, PASSWORD)
    assert (await service.authenticate(sign_in.session.secret)).user_id == sign_in.user.id
    assert ran == [sign_in.user.id]  # the next hook still ran
    assert "a signed_in hook failed" in caplog.text
    assert "the audit service is down" in caplog.text


def test_unknown_hook_events_are_refused(hooks: Hooks) -> None:
    async def hook(_: AccountEvent) -> None:
        return None

    with pytest.raises(ValueError, match="no hook event"):
        hooks.on("signed_up", hook)  # type: ignore[arg-type]
