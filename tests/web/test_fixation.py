"""SESS-06 (new ID on every authentication, old one destroyed) and TERM-03 over HTTP.

A fixation attack plants a session ID in the victim's browser before they sign in;
the server must never let that ID become (or stay) a signed-in session. Each test
checks the outcome three ways: the cookie value, a replay of the old value (401),
and the store (``service.sessions.list``), so a merely "unused" old ID fails.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import httpx

from tests.support.services import PASSWORD
from velvetrope import AuthService, FrozenClock

COOKIE = "__Host-velvetrope-session"
NEW_PASSWORD = "a brand new passphrase for ann"


def bare(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A same-origin client on the same app with an empty cookie jar."""
    origin = str(client.base_url).rstrip("/")
    return httpx.AsyncClient(
        transport=client._transport, base_url=origin, headers={"Origin": origin}
    )


async def me_with(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    """``GET /auth/me`` presenting ``secret`` as the session cookie, from a clean client."""
    async with bare(client) as other:
        return await other.get("/auth/me", headers={"Cookie": f"{COOKIE}={secret}"})


async def login_with_planted(
    client: httpx.AsyncClient, planted: str, email: str, password: str = PASSWORD
) -> httpx.Response:
    """Sign in while the browser already holds ``planted`` as its session cookie."""
    async with bare(client) as victim:
        return await victim.post(
            "/auth/login",
            json={"email": email, "password": password},
            headers={"Cookie": f"{COOKIE}={planted}"},
        )


async def user_id(service: AuthService, email: str) -> str:
    user = await service.stores.users.get_by_email(email)
    assert user is not None
    return user.id


async def test_SESS_06_cookie_before_login_differs_from_after(
    client: httpx.AsyncClient, user_email: str, service: AuthService
) -> None:
    first = await client.post("/auth/login", json={"email": user_email, "password": PASSWORD})
    assert first.status_code == 200
    before = first.cookies[COOKIE]
    second = await client.post("/auth/login", json={"email": user_email, "password": PASSWORD})
    assert second.status_code == 200
    after = second.cookies[COOKIE]

    assert after != before
    assert client.cookies[COOKIE] == after
    assert (await me_with(client, before)).status_code == 401
    assert (await me_with(client, after)).status_code == 200
    # Destroyed, not just superseded: one session left for the user.
    assert len(await service.sessions.list(await user_id(service, user_email))) == 1


async def test_SESS_06_own_session_held_before_login_is_destroyed(
    signed_in: httpx.AsyncClient, user_email: str, service: AuthService
) -> None:
    held = signed_in.cookies[COOKIE]
    [old] = await service.sessions.list(await user_id(service, user_email))

    response = await login_with_planted(signed_in, held, user_email)

    assert response.status_code == 200
    assert response.cookies[COOKIE] != held
    assert (await me_with(signed_in, held)).status_code == 401
    [new] = await service.sessions.list(await user_id(service, user_email))
    assert new.handle != old.handle


async def test_SESS_06_planted_session_of_another_user_is_destroyed_at_login(
    client: httpx.AsyncClient, user_email: str, service: AuthService
) -> None:
    """Mallory plants her own live session in Ann's browser; Ann signs in."""
    mallory = await service.register("mallory@example.com", PASSWORD)
    planted = (await service.login(mallory.email, PASSWORD)).session.secret
    assert (await me_with(client, planted)).json()["email"] == "mallory@example.com"

    response = await login_with_planted(client, planted, user_email)

    assert response.status_code == 200
    assert response.json()["user"]["email"] == user_email
    fresh = response.cookies[COOKIE]
    assert fresh != planted
    me = await me_with(client, fresh)
    assert me.status_code == 200
    assert me.json()["email"] == user_email
    assert (await me_with(client, planted)).status_code == 401
    assert await service.sessions.list(mallory.id) == []
    assert len(await service.sessions.list(await user_id(service, user_email))) == 1


async def test_SESS_06_unknown_planted_id_is_never_adopted(
    client: httpx.AsyncClient, user_email: str, service: AuthService
) -> None:
    """SESS-05 strict mode: an ID the server never issued is replaced, not adopted."""
    planted = secrets.token_urlsafe(32)
    assert len(planted) == 43

    response = await login_with_planted(client, planted, user_email)

    assert response.status_code == 200
    assert response.cookies[COOKIE] != planted
    assert (await me_with(client, planted)).status_code == 401
    assert len(await service.sessions.list(await user_id(service, user_email))) == 1


async def test_SESS_06_failed_login_does_not_adopt_or_sign_in_planted_id(
    client: httpx.AsyncClient, user_email: str, service: AuthService
) -> None:
    planted = secrets.token_urlsafe(32)
    response = await login_with_planted(client, planted, user_email, password="wrong password!")
    assert response.status_code == 401
    assert response.headers.get_list("set-cookie") == []
    assert (await me_with(client, planted)).status_code == 401
    assert await service.sessions.list(await user_id(service, user_email)) == []


async def test_SESS_06_reauth_issues_new_id_and_kills_the_old(
    signed_in: httpx.AsyncClient, user_email: str, service: AuthService, clock: FrozenClock
) -> None:
    old = signed_in.cookies[COOKIE]
    old_handle = (await signed_in.get("/auth/me")).json()["session"]["id"]
    clock.advance(timedelta(minutes=11))
    await signed_in.get("/auth/me")  # keep it alive

    response = await signed_in.post("/auth/reauth", json={"password": PASSWORD})

    assert response.status_code == 200
    new = response.cookies[COOKIE]
    assert new != old
    assert signed_in.cookies[COOKIE] == new
    assert (await me_with(signed_in, old)).status_code == 401
    me = await me_with(signed_in, new)
    assert me.status_code == 200
    assert me.json()["session"]["id"] != old_handle
    assert len(await service.sessions.list(await user_id(service, user_email))) == 1


async def test_SESS_06_failed_reauth_keeps_the_session_as_is(
    signed_in: httpx.AsyncClient,
) -> None:
    old = signed_in.cookies[COOKIE]
    response = await signed_in.post("/auth/reauth", json={"password": "not the password"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_credentials"
    assert response.headers.get_list("set-cookie") == []
    assert (await me_with(signed_in, old)).status_code == 200


async def test_SESS_06_TERM_03_password_change_rotates_and_ends_other_sessions(
    client: httpx.AsyncClient, signed_in: httpx.AsyncClient, user_email: str, service: AuthService
) -> None:
    old = signed_in.cookies[COOKIE]
    async with bare(client) as laptop:
        login = await laptop.post("/auth/login", json={"email": user_email, "password": PASSWORD})
        assert login.status_code == 200
        laptop_secret = laptop.cookies[COOKIE]
    uid = await user_id(service, user_email)
    assert len(await service.sessions.list(uid)) == 2

    response = await signed_in.post(
        "/auth/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )

    assert response.status_code == 204
    new = response.cookies[COOKIE]
    assert new != old
    assert (await me_with(signed_in, old)).status_code == 401
    assert (await me_with(signed_in, laptop_secret)).status_code == 401  # TERM-03
    assert (await me_with(signed_in, new)).status_code == 200
    [remaining] = await service.sessions.list(uid)
    assert remaining.handle == (await me_with(signed_in, new)).json()["session"]["id"]

    async with bare(client) as fresh:
        stale = await fresh.post("/auth/login", json={"email": user_email, "password": PASSWORD})
        assert stale.status_code == 401
        ok = await fresh.post("/auth/login", json={"email": user_email, "password": NEW_PASSWORD})
        assert ok.status_code == 200


async def test_SESS_06_wrong_current_password_changes_nothing(
    client: httpx.AsyncClient, signed_in: httpx.AsyncClient, user_email: str, service: AuthService
) -> None:
    old = signed_in.cookies[COOKIE]
    async with bare(client) as laptop:
        await laptop.post("/auth/login", json={"email": user_email, "password": PASSWORD})
        laptop_secret = laptop.cookies[COOKIE]

    response = await signed_in.post(
        "/auth/password", json={"current_password": "wrong password!", "new_password": NEW_PASSWORD}
    )

    assert response.status_code == 401
    assert response.headers.get_list("set-cookie") == []
    assert (await me_with(signed_in, old)).status_code == 200
    assert (await me_with(signed_in, laptop_secret)).status_code == 200
    assert len(await service.sessions.list(await user_id(service, user_email))) == 2
