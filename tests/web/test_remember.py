"""Remember me (LIB-05): unchecked, a browser-session cookie and a shorter server-side
lifetime; checked (or absent from an API sign-in), today's persistent cookie."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest

from tests.support.cookies import SetCookie
from tests.support.services import ORIGIN, PASSWORD, SESSION_POLICY, app_settings, asgi_client
from velvetrope import AuthService, FrozenClock, Settings, Velvetrope, create_app

SHORT = SESSION_POLICY.absolute_lifetime / 2  # the default transient lifetime: 6 h
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
SAME_ORIGIN = {"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"}
CREDENTIALS = {
    "session": ("__Host-velvetrope-session",),
    "jwt-cookie": ("__Host-velvetrope-access", "__Host-velvetrope-refresh"),
}


def credential_cookies(response: httpx.Response, mode: str) -> list[SetCookie]:
    cookies = [SetCookie.parse(h) for h in response.headers.get_list("set-cookie")]
    found = [c for c in cookies if c.name in CREDENTIALS[mode]]
    assert len(found) == len(CREDENTIALS[mode]), response.headers
    return found


@pytest.fixture(params=["session", "jwt-cookie"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(mode: str) -> Settings:
    return app_settings(browser_credentials=mode)


async def login(client: httpx.AsyncClient, email: str, **extra: object) -> httpx.Response:
    body = {"email": email, "password": PASSWORD, **extra}
    response = await client.post("/auth/login", json=body)
    assert response.status_code == 200, response.text
    return response


async def test_LIB_05_unchecked_is_a_browser_session_cookie_with_a_shorter_life(
    client: httpx.AsyncClient, user_email: str, mode: str, service: AuthService, clock: FrozenClock
) -> None:
    response = await login(client, user_email, remember=False)
    for cookie in credential_cookies(response, mode):
        assert not cookie.has("max-age"), cookie
        assert not cookie.has("expires"), cookie
        assert cookie.has("secure")
        assert cookie.has("httponly")
    user = await service.find_user(user_email)
    [device] = await service.devices(user.id)
    if mode == "session":
        [session] = await service.sessions.list(user.id)
        assert session.expires_at - session.created_at == SHORT
    else:
        family = await service.family(device.handle)
        assert family is not None
        assert family.expires_at - family.created_at == SHORT
    step = timedelta(minutes=20)
    while clock() + step < device.created_at + SHORT:  # active all along: never idle
        clock.advance(step)
        assert [d.handle for d in await service.devices(user.id)] == [device.handle]
        if mode == "jwt-cookie":  # activity renews the access token from the refresh cookie
            assert (await client.post("/auth/refresh")).status_code == 200
        assert (await client.get("/auth/me")).status_code == 200
    clock.advance(device.created_at + SHORT - clock())
    assert (await client.get("/auth/me")).status_code == 401  # over, however active
    if mode == "jwt-cookie":
        assert (await client.post("/auth/refresh")).status_code == 401


@pytest.mark.parametrize("extra", [{"remember": True}, {}])
async def test_LIB_05_checked_or_absent_is_the_persistent_cookie(
    client: httpx.AsyncClient, user_email: str, mode: str, extra: dict[str, object]
) -> None:
    response = await login(client, user_email, **extra)
    cookies = credential_cookies(response, mode)
    if mode == "session":
        [session] = cookies
        assert session.max_age == SESSION_POLICY.absolute_lifetime.total_seconds()
    else:
        access, refresh = cookies
        assert access.max_age == 15 * 60
        assert refresh.max_age == timedelta(days=30).total_seconds()


async def test_LIB_05_reauthentication_keeps_a_sign_in_unremembered(
    client: httpx.AsyncClient, user_email: str, service: AuthService, clock: FrozenClock, mode: str
) -> None:
    await login(client, user_email, remember=False)
    clock.advance(timedelta(minutes=10))
    response = await client.post("/auth/reauth", json={"password": PASSWORD})
    assert response.status_code == 200, response.text
    for cookie in credential_cookies(response, mode):
        assert not cookie.has("max-age"), cookie
    user = await service.find_user(user_email)
    [device] = await service.devices(user.id)
    if mode == "session":
        [session] = await service.sessions.list(user.id)
        assert session.authenticated_at == clock()  # a fresh proof, and still the short life
        assert session.expires_at - session.authenticated_at == SHORT
    else:
        family = await service.family(device.handle)  # re-authenticating opened a new one
        assert family is not None
        assert family.expires_at - family.created_at == SHORT


async def test_LIB_05_the_sign_in_page_remembers_only_when_the_box_is_checked(
    vr: Velvetrope, user_email: str, mode: str
) -> None:
    for checked, persistent in ((False, False), (True, True)):
        async with asgi_client(create_app(velvetrope=vr)) as http:
            page = await http.get("/signin")
            match = TOKEN.search(page.text)
            assert match is not None
            assert 'name="remember" type="checkbox"' in page.text
            data = {"csrf_token": match.group(1), "email": user_email, "password": PASSWORD}
            if checked:
                data["remember"] = "true"
            response = await http.post("/signin", data=data, headers=SAME_ORIGIN)
            assert response.status_code == 303, response.text
            for cookie in credential_cookies(response, mode):
                assert cookie.has("max-age") is persistent, cookie


def test_LIB_05_the_transient_lifetime_must_be_shorter_than_the_absolute_one() -> None:
    with pytest.raises(ValueError, match="shorter than VELVETROPE_SESSION_ABSOLUTE_LIFETIME"):
        app_settings(session_transient_lifetime="PT12H")
    assert app_settings(session_transient_lifetime="PT2H").session_policy().short_lifetime == (
        timedelta(hours=2)
    )
