"""COOK-01..06, COOK-08, COOK-09 and SESS-07 at the HTTP level.

Every ``Set-Cookie`` the API sends (sign-in, re-auth, password change, sign-out,
ending the current device, sign out everywhere) is parsed and checked attribute by
attribute. The fixture policy's absolute lifetime is 12 h (``tests/conftest.py``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import pytest

from tests.support.cookies import SetCookie, parse_set_cookie
from tests.support.services import PASSWORD, SESSION_POLICY
from velvetrope import AuthService, Settings, Velvetrope, create_app

COOKIE = "__Host-velvetrope-session"
NEW_PASSWORD = "a brand new passphrase for ann"
ABSOLUTE_LIFETIME = int(SESSION_POLICY.absolute_lifetime.total_seconds())
FOUR_HUNDRED_DAYS = 400 * 24 * 3600
SECRET_RE = re.compile(r"[A-Za-z0-9_-]{43}")


def only_cookie(response: httpx.Response) -> SetCookie:
    """The one ``Set-Cookie`` of ``response`` (there must be exactly one)."""
    headers = response.headers.get_list("set-cookie")
    assert len(headers) == 1, headers
    return parse_set_cookie(headers[0])


def bare(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client on the same app with an empty cookie jar."""
    return httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))


async def status_of(client: httpx.AsyncClient, secret: str) -> int:
    """The status of ``GET /auth/me`` when ``secret`` is presented as the session cookie."""
    async with bare(client) as other:
        response = await other.get("/auth/me", headers={"Cookie": f"{COOKIE}={secret}"})
    return response.status_code


Flow = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


async def _login(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/auth/login", json={"email": "ann@example.com", "password": PASSWORD})


async def _reauth(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/auth/reauth", json={"password": PASSWORD})


async def _password(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post(
        "/auth/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )


async def _logout(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/auth/logout")


async def _end_own_session(client: httpx.AsyncClient) -> httpx.Response:
    me = await client.get("/auth/me")
    assert me.status_code == 200, me.text
    return await client.delete(f"/auth/sessions/{me.json()['session']['id']}")


async def _logout_all(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/auth/logout-all")


SETTERS: dict[str, tuple[Flow, int]] = {
    "login": (_login, 200),
    "reauth": (_reauth, 200),
    "password": (_password, 204),
}
CLEARERS: dict[str, tuple[Flow, int]] = {
    "logout": (_logout, 204),
    "end-own-session": (_end_own_session, 204),
    "logout-all": (_logout_all, 204),
}
FLOWS = {**SETTERS, **CLEARERS}


async def run(flow: str, client: httpx.AsyncClient) -> SetCookie:
    """Run ``flow`` on a signed-in client; return the one cookie it sets."""
    action, status = FLOWS[flow]
    response = await action(client)
    assert response.status_code == status, response.text
    return only_cookie(response)


def test_set_cookie_parser_reads_every_attribute() -> None:
    cookie = parse_set_cookie(
        '__Host-x=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Max-Age=0; Path=/; '
        "SameSite=lax; Secure"
    )
    assert cookie.name == "__Host-x"
    assert cookie.value == '""'
    assert cookie.attributes == {
        "expires": "Thu, 01 Jan 1970 00:00:00 GMT",
        "httponly": "",
        "max-age": "0",
        "path": "/",
        "samesite": "lax",
        "secure": "",
    }
    with pytest.raises(AssertionError):
        parse_set_cookie("a=b; Path=/; path=/x")


@pytest.mark.parametrize("flow", FLOWS)
async def test_COOK_01_secure_on_every_auth_cookie(signed_in: httpx.AsyncClient, flow: str) -> None:
    cookie = await run(flow, signed_in)
    assert cookie.has("secure")
    assert cookie.attributes["secure"] == ""


@pytest.mark.parametrize("flow", FLOWS)
async def test_COOK_02_httponly_on_every_auth_cookie(
    signed_in: httpx.AsyncClient, flow: str
) -> None:
    cookie = await run(flow, signed_in)
    assert cookie.has("httponly")


async def test_COOK_02_session_id_never_in_a_response_body(
    client: httpx.AsyncClient, user_email: str
) -> None:
    """In cookie mode the ID travels only in ``Set-Cookie``: no body, no other header."""
    responses: list[httpx.Response] = []
    secrets: list[str] = []

    login = await client.post("/auth/login", json={"email": user_email, "password": PASSWORD})
    assert login.status_code == 200
    assert set(login.json()) == {"user", "csrf_token"}
    assert set(login.json()["user"]) == {"id", "email"}
    secrets.append(only_cookie(login).value)
    assert secrets[-1] not in login.json()["csrf_token"]
    responses.append(login)
    responses.append(await client.get("/auth/me"))
    responses.append(await client.get("/auth/sessions"))
    reauth = await client.post("/auth/reauth", json={"password": PASSWORD})
    assert reauth.status_code == 200
    secrets.append(only_cookie(reauth).value)
    responses.append(reauth)
    responses.append(await client.get("/auth/me"))
    responses.append(await client.get("/auth/sessions"))
    change = await client.post(
        "/auth/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert change.status_code == 204
    secrets.append(only_cookie(change).value)
    responses.append(change)
    responses.append(await client.get("/auth/me"))
    responses.append(await client.get("/auth/sessions"))
    for stale in secrets[:2]:  # error bodies must not echo the presented ID either
        async with bare(client) as other:
            responses.append(await other.get("/auth/me", headers={"Cookie": f"{COOKIE}={stale}"}))

    assert len(set(secrets)) == 3
    assert all(SECRET_RE.fullmatch(s) for s in secrets)
    for response in responses:
        assert response.status_code in {200, 204, 401}, response.text
        for secret in secrets:
            assert secret not in response.text, response.request.url
            for name, value in response.headers.multi_items():
                if name != "set-cookie":
                    assert secret not in value, name


@pytest.mark.parametrize("flow", FLOWS)
async def test_COOK_03_host_prefix_path_and_no_domain(
    signed_in: httpx.AsyncClient, flow: str
) -> None:
    """``__Host-`` requires Secure, ``Path=/`` and no Domain, or browsers drop the cookie."""
    cookie = await run(flow, signed_in)
    assert cookie.name == COOKIE
    assert cookie.name.startswith("__Host-")
    assert cookie.has("secure")
    assert cookie.attributes.get("path") == "/"
    assert not cookie.has("domain")


@pytest.mark.parametrize("flow", FLOWS)
async def test_COOK_04_samesite_lax_set_explicitly(signed_in: httpx.AsyncClient, flow: str) -> None:
    cookie = await run(flow, signed_in)
    assert cookie.attributes.get("samesite", "").lower() == "lax"


@pytest.mark.parametrize("flow", FLOWS)
async def test_COOK_05_no_domain_attribute(signed_in: httpx.AsyncClient, flow: str) -> None:
    cookie = await run(flow, signed_in)
    assert "domain" not in cookie.attributes


@pytest.mark.parametrize("flow", SETTERS)
async def test_COOK_06_max_age_within_absolute_lifetime_and_400_days(
    signed_in: httpx.AsyncClient, flow: str
) -> None:
    cookie = await run(flow, signed_in)
    assert SECRET_RE.fullmatch(cookie.value)
    assert 0 < cookie.max_age <= ABSOLUTE_LIFETIME
    assert cookie.max_age <= FOUR_HUNDRED_DAYS
    assert ABSOLUTE_LIFETIME == 12 * 3600  # the fixture policy the bound is taken from
    assert not cookie.has("expires")  # Max-Age alone: no clock skew between us and the browser


@pytest.mark.parametrize("flow", CLEARERS)
async def test_COOK_08_sign_out_clears_cookie_and_site_data(
    signed_in: httpx.AsyncClient, flow: str
) -> None:
    """Same name and path, ``Max-Age=0``, a past ``Expires`` and ``Clear-Site-Data``."""
    secret = signed_in.cookies[COOKIE]
    action, status = CLEARERS[flow]
    response = await action(signed_in)
    assert response.status_code == status

    cookie = only_cookie(response)
    assert cookie.name == COOKIE
    assert cookie.value in {"", '""'}
    assert cookie.attributes.get("path") == "/"
    assert cookie.max_age == 0
    assert parsedate_to_datetime(cookie.attributes["expires"]) < datetime.now(UTC) - timedelta(
        days=365
    )
    # A __Host- cookie is only overwritten by a Set-Cookie that itself qualifies.
    assert cookie.has("secure")
    assert not cookie.has("domain")

    directives = {d.strip() for d in response.headers["clear-site-data"].split(",")}
    assert {'"cookies"', '"storage"'} <= directives
    assert COOKIE not in signed_in.cookies
    assert await status_of(signed_in, secret) == 401  # TERM-01: the old ID is dead


async def test_COOK_08_logout_without_a_session_still_clears(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/logout")
    assert response.status_code == 204
    cookie = only_cookie(response)
    assert (cookie.name, cookie.max_age) == (COOKIE, 0)
    assert response.headers["clear-site-data"] == '"cookies", "storage"'


async def test_COOK_08_ending_another_device_does_not_clear_this_cookie(
    client: httpx.AsyncClient, signed_in: httpx.AsyncClient, user_email: str
) -> None:
    async with bare(client) as other:
        await other.post("/auth/login", json={"email": user_email, "password": PASSWORD})
        devices = (await signed_in.get("/auth/sessions")).json()
        [theirs] = [d for d in devices if not d["current"]]
        response = await signed_in.delete(f"/auth/sessions/{theirs['id']}")
        assert response.status_code == 204
        assert response.headers.get_list("set-cookie") == []
        assert "clear-site-data" not in response.headers
        assert (await signed_in.get("/auth/me")).status_code == 200


def _no_store(response: httpx.Response) -> bool:
    directives = {d.strip().lower() for d in response.headers.get("cache-control", "").split(",")}
    return "no-store" in directives


async def test_COOK_09_no_store_on_every_auth_response(
    client: httpx.AsyncClient, user_email: str
) -> None:
    steps: list[tuple[str, int, httpx.Response]] = []

    async def step(label: str, status: int, request: Awaitable[httpx.Response]) -> None:
        steps.append((label, status, await request))

    creds = {"email": user_email, "password": PASSWORD}
    await step("register", 201, client.post("/auth/register", json={**creds, "email": "b@ex.com"}))
    await step("register taken", 409, client.post("/auth/register", json=creds))
    await step("me signed out", 401, client.get("/auth/me"))
    await step("login bad", 401, client.post("/auth/login", json={**creds, "password": "nope"}))
    await step("login 422", 422, client.post("/auth/login", json={"email": user_email}))
    await step("login 415", 415, client.post("/auth/login", content=b"x"))
    await step("login", 200, client.post("/auth/login", json=creds))
    await step("me", 200, client.get("/auth/me"))
    await step("sessions", 200, client.get("/auth/sessions"))
    await step("reauth", 200, client.post("/auth/reauth", json={"password": PASSWORD}))
    await step("reauth bad", 401, client.post("/auth/reauth", json={"password": "wrong"}))
    await step("password", 204, _password(client))
    await step("csrf after the new session ID", 200, client.get("/auth/csrf"))
    handle = (await client.get("/auth/me")).json()["session"]["id"]
    await step("delete 404", 404, client.delete("/auth/sessions/00"))
    await step("delete own", 204, client.delete(f"/auth/sessions/{handle}"))
    await step(
        "login again", 200, client.post("/auth/login", json={**creds, "password": NEW_PASSWORD})
    )
    await step("logout-all", 204, client.post("/auth/logout-all"))
    await step("logout", 204, client.post("/auth/logout"))

    for label, status, response in steps:
        assert response.status_code == status, (label, response.text)
        assert _no_store(response), (label, response.headers.get("cache-control"))
        assert response.headers["cache-control"] == "no-store", label


async def test_COOK_01_03_loopback_http_origin_keeps_secure_host_cookie(
    service: AuthService, user_email: str
) -> None:
    """Browsers accept Secure cookies on http://127.0.0.1, so nothing is relaxed there."""
    settings = Settings(
        database_url="memory://", public_origin="http://127.0.0.1:8000", _env_file=None
    )
    app = create_app(velvetrope=Velvetrope(settings, service=service))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        response = await http.post("/auth/login", json={"email": user_email, "password": PASSWORD})
    assert response.status_code == 200
    cookie = only_cookie(response)
    assert cookie.name == COOKIE
    assert cookie.has("secure")
    assert cookie.has("httponly")
    assert cookie.attributes.get("path") == "/"
    assert not cookie.has("domain")


# SESS-07: the session ID is accepted from the cookie and from nowhere else.

Carrier = Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]


async def _query_session(http: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await http.get("/auth/me", params={"session": secret})


async def _query_cookie_name(http: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await http.get("/auth/me", params={COOKIE: secret})


async def _query_sid(http: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await http.get("/auth/sessions", params={"sid": secret})


async def _form_body(http: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await http.post("/auth/logout-all", data={COOKIE: secret, "session": secret})


async def _json_body(http: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await http.post(
        "/auth/reauth", json={"password": PASSWORD, "session": secret, COOKIE: secret}
    )


async def _bearer(http: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await http.get("/auth/me", headers={"Authorization": f"Bearer {secret}"})


async def _x_session_id(http: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await http.get("/auth/me", headers={"X-Session-Id": secret})


async def _unprefixed_cookie(http: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await http.get("/auth/me", headers={"Cookie": f"velvetrope-session={secret}"})


async def _other_cookie_name(http: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await http.get("/auth/me", headers={"Cookie": f"session={secret}; sid={secret}"})


CARRIERS: dict[str, Carrier] = {
    "query-session": _query_session,
    "query-cookie-name": _query_cookie_name,
    "query-sid": _query_sid,
    "form-body": _form_body,
    "json-body": _json_body,
    "authorization-bearer": _bearer,
    "x-session-id": _x_session_id,
    "cookie-without-host-prefix": _unprefixed_cookie,
    "cookie-other-name": _other_cookie_name,
}


@pytest.mark.parametrize("carrier", CARRIERS)
async def test_SESS_07_session_id_accepted_only_from_the_cookie(
    signed_in: httpx.AsyncClient, carrier: str
) -> None:
    secret = signed_in.cookies[COOKIE]
    async with bare(signed_in) as http:
        response = await CARRIERS[carrier](http, secret)
    assert response.status_code == 401, response.text
    # a session ID in Authorization is at best a malformed access token, never a session
    assert response.json()["error"] in {"not_authenticated", "invalid_token"}
    assert secret not in response.text
    # The session itself is fine: the 401 is about where the ID came from.
    assert await status_of(signed_in, secret) == 200
