"""JWT-in-cookie mode end to end (``VELVETROPE_BROWSER_CREDENTIALS=jwt-cookie``).

Sign-in sets an access-token cookie (``SameSite=Lax``) and a refresh-token cookie
(``SameSite=Strict``), never a token in a body (COOK-01..09); refresh rotates under the
CSRF token bound to the refresh family (RT-02, RT-03, CSRF-01/02); sign-out and ending
the device kill both. The access token lives 15 minutes (``TOKEN_POLICY``).
"""

from __future__ import annotations

import base64
from datetime import timedelta

import httpx
import pytest

from tests.support.cookies import SetCookie, parse_set_cookie
from tests.support.services import (
    ORIGIN,
    PASSWORD,
    app_settings,
    asgi_client,
    started_service,
)
from velvetrope import (
    AuthService,
    FrozenClock,
    PasswordHasher,
    Settings,
    Velvetrope,
    create_app,
)
from velvetrope.core.tokens.access import TokenPolicy
from velvetrope.stores import MemoryStores

ACCESS = "__Host-velvetrope-access"
REFRESH = "__Host-velvetrope-refresh"
SESSION = "__Host-velvetrope-session"
ACCESS_TTL = 15 * 60
REFRESH_LIFETIME = 30 * 24 * 3600
FOUR_HUNDRED_DAYS = 400 * 24 * 3600
PAST_GRACE = timedelta(seconds=11)  # TokenPolicy.refresh_grace is 10 s
PAST_ACCESS_TTL = timedelta(seconds=ACCESS_TTL + 31)  # + the 30 s leeway


@pytest.fixture
def settings() -> Settings:
    return app_settings(browser_credentials="jwt-cookie")


def same_origin(token: str | None = None) -> dict[str, str]:
    """What a same-origin page's fetch() sends, with the CSRF token when given."""
    headers = {"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"}
    if token is not None:
        headers["X-CSRF-Token"] = token
    return headers


def set_cookies(response: httpx.Response) -> dict[str, SetCookie]:
    """Every ``Set-Cookie`` of ``response`` by name (each name at most once)."""
    parsed = [parse_set_cookie(h) for h in response.headers.get_list("set-cookie")]
    by_name = {cookie.name: cookie for cookie in parsed}
    assert len(by_name) == len(parsed), parsed
    return by_name


async def login(http: httpx.AsyncClient, email: str) -> httpx.Response:
    response = await http.post(
        "/auth/login", json={"email": email, "password": PASSWORD}, headers=same_origin()
    )
    assert response.status_code == 200, response.text
    return response


@pytest.fixture
async def browser(bare_client: httpx.AsyncClient, user_email: str) -> httpx.AsyncClient:
    """A browser signed in in JWT-in-cookie mode; its CSRF token in ``browser.csrf``."""
    response = await login(bare_client, user_email)
    bare_client.headers["X-Test-Csrf"] = response.json()["csrf_token"]
    return bare_client


def csrf_of(browser: httpx.AsyncClient) -> str:
    return browser.headers["X-Test-Csrf"]


def jar(http: httpx.AsyncClient) -> dict[str, str]:
    return {cookie.name: cookie.value or "" for cookie in http.cookies.jar}


def other_client(http: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client on the same app with an empty cookie jar."""
    return httpx.AsyncClient(transport=http._transport, base_url=str(http.base_url))


async def me_with(http: httpx.AsyncClient, cookies: dict[str, str]) -> int:
    """The status of ``GET /auth/me`` for a browser holding exactly ``cookies``."""
    header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    async with other_client(http) as other:
        return (await other.get("/auth/me", headers={"Cookie": header})).status_code


async def refresh_with(http: httpx.AsyncClient, refresh: str, token: str) -> httpx.Response:
    """``POST /auth/refresh`` from a browser holding only ``refresh``."""
    async with other_client(http) as other:
        return await other.post(
            "/auth/refresh", headers={**same_origin(token), "Cookie": f"{REFRESH}={refresh}"}
        )


# --- sign-in: exactly two cookies, right attributes, no token in the body ----------------


async def test_login_sets_exactly_the_access_and_refresh_cookies(
    bare_client: httpx.AsyncClient, user_email: str
) -> None:
    cookies = set_cookies(await login(bare_client, user_email))
    assert set(cookies) == {ACCESS, REFRESH}
    assert SESSION not in jar(bare_client)


async def test_COOK_01_03_04_05_cookie_attributes(
    bare_client: httpx.AsyncClient, user_email: str
) -> None:
    cookies = set_cookies(await login(bare_client, user_email))
    for cookie in cookies.values():
        assert cookie.name.startswith("__Host-")
        assert cookie.has("secure")
        assert cookie.has("httponly")
        assert cookie.attributes["path"] == "/"
        assert not cookie.has("domain")
    assert cookies[ACCESS].attributes["samesite"] == "lax"
    assert cookies[REFRESH].attributes["samesite"] == "strict"


async def test_COOK_06_max_age_follows_the_token_lifetimes(
    bare_client: httpx.AsyncClient, user_email: str
) -> None:
    cookies = set_cookies(await login(bare_client, user_email))
    assert cookies[ACCESS].max_age == ACCESS_TTL
    assert 0 < cookies[REFRESH].max_age <= REFRESH_LIFETIME <= FOUR_HUNDRED_DAYS


async def test_COOK_02_no_token_in_any_body(
    bare_client: httpx.AsyncClient, user_email: str
) -> None:
    response = await login(bare_client, user_email)
    cookies = set_cookies(response)
    body = response.json()
    assert set(body) == {"user", "csrf_token"}
    for cookie in cookies.values():
        assert cookie.value not in response.text
    refreshed = await bare_client.post("/auth/refresh", headers=same_origin(body["csrf_token"]))
    assert refreshed.status_code == 200, refreshed.text
    assert set(refreshed.json()) == {"user", "csrf_token"}
    for cookie in set_cookies(refreshed).values():
        assert cookie.value not in refreshed.text
    me = await bare_client.get("/auth/me")
    for value in jar(bare_client).values():
        assert value not in me.text


async def test_COOK_09_responses_that_set_cookies_are_not_stored(
    bare_client: httpx.AsyncClient, user_email: str
) -> None:
    response = await login(bare_client, user_email)
    assert response.headers["cache-control"] == "no-store"
    refreshed = await bare_client.post(
        "/auth/refresh", headers=same_origin(response.json()["csrf_token"])
    )
    assert refreshed.headers["cache-control"] == "no-store"


async def test_COOK_07_cookies_fit_in_4096_bytes_with_rs256_and_maximal_claims(
    clock: FrozenClock, hasher: PasswordHasher
) -> None:
    """The largest signature (RS256, 3072-bit key: 512 base64 characters) and the longest
    issuer and audience the claim checks accept (256 characters each)."""
    longest = "https://" + "a" * 248
    service = await started_service(
        MemoryStores(),
        clock=clock,
        hasher=hasher,
        token_policy=TokenPolicy(issuer=longest, audience=longest, algorithm="RS256"),
    )
    user = await service.register("a" * 64 + "@" + "b" * 60 + ".example", PASSWORD)
    vr = Velvetrope(app_settings(browser_credentials="jwt-cookie"), service=service)
    async with asgi_client(create_app(velvetrope=vr)) as http:
        response = await login(http, user.email)
        assert response.json()["user"]["email"] == user.email
        cookies = set_cookies(response)
        header, _, _ = cookies[ACCESS].value.partition(".")
        assert '"RS256"' in _b64json(header)
        for cookie in cookies.values():
            assert len(cookie.name) + len(cookie.value) <= 4096
        assert len(cookies[ACCESS].value) > 1000  # really the big token
        assert (await http.get("/auth/me")).status_code == 200


def _b64json(segment: str) -> str:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode()


# --- using the cookies -------------------------------------------------------------------


async def test_me_works_with_the_access_cookie(browser: httpx.AsyncClient) -> None:
    response = await browser.get("/auth/me")
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "ann@example.com"
    sessions = (await browser.get("/auth/sessions")).json()
    assert [s["id"] for s in sessions if s["current"]] == [response.json()["session"]["id"]]


async def test_the_access_cookie_alone_authenticates_and_the_refresh_cookie_alone_does_not(
    browser: httpx.AsyncClient,
) -> None:
    cookies = jar(browser)
    assert await me_with(browser, {ACCESS: cookies[ACCESS]}) == 200
    assert await me_with(browser, {REFRESH: cookies[REFRESH]}) == 401
    assert await me_with(browser, {SESSION: cookies[ACCESS]}) == 401


async def test_a_session_cookie_means_nothing_in_jwt_cookie_mode(
    browser: httpx.AsyncClient, service: AuthService, user_email: str
) -> None:
    sign_in = await service.login(user_email, PASSWORD)
    assert await me_with(browser, {SESSION: sign_in.session.secret}) == 401


async def test_a_forged_access_cookie_gets_401_without_a_bearer_challenge(
    browser: httpx.AsyncClient,
) -> None:
    async with other_client(browser) as other:
        response = await other.get("/auth/me", headers={"Cookie": f"{ACCESS}=x.y.z"})
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert "invalid_token" not in response.headers["www-authenticate"]


# --- refresh: rotation under the CSRF token ----------------------------------------------


async def test_RT_02_refresh_rotates_both_cookies(browser: httpx.AsyncClient) -> None:
    before = jar(browser)
    response = await browser.post("/auth/refresh", headers=same_origin(csrf_of(browser)))
    assert response.status_code == 200, response.text
    cookies = set_cookies(response)
    assert set(cookies) == {ACCESS, REFRESH}
    assert cookies[ACCESS].value != before[ACCESS]
    assert cookies[REFRESH].value != before[REFRESH]
    assert cookies[ACCESS].max_age == ACCESS_TTL
    assert (await browser.get("/auth/me")).status_code == 200
    # the family is the binding, so the token from the sign-in still works after a refresh
    again = await browser.post("/auth/refresh", headers=same_origin(csrf_of(browser)))
    assert again.status_code == 200


async def test_CSRF_01_refresh_without_the_token_is_refused_and_rotates_nothing(
    browser: httpx.AsyncClient,
) -> None:
    before = jar(browser)
    for headers in (same_origin(), same_origin("A" * 22 + "." + "A" * 43)):
        response = await browser.post("/auth/refresh", headers=headers)
        assert response.status_code == 403
        assert response.json()["error"] == "csrf_failed"
        assert "set-cookie" not in response.headers
    assert jar(browser) == before
    ok = await refresh_with(browser, before[REFRESH], csrf_of(browser))
    assert ok.status_code == 200  # the refresh token was not used up


async def test_CSRF_05_cross_site_refresh_is_refused_even_with_the_token(
    browser: httpx.AsyncClient,
) -> None:
    headers = {"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": csrf_of(browser)}
    response = await browser.post("/auth/refresh", headers=headers)
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


async def test_refresh_without_a_refresh_cookie_is_401(
    bare_client: httpx.AsyncClient,
) -> None:
    response = await bare_client.post("/auth/refresh", headers=same_origin())
    assert response.status_code == 401


async def test_RT_03_a_replayed_refresh_cookie_revokes_the_family(
    browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    token = csrf_of(browser)
    first = jar(browser)
    assert (await browser.post("/auth/refresh", headers=same_origin(token))).status_code == 200
    second = jar(browser)
    clock.advance(PAST_GRACE)
    replay = await refresh_with(browser, first[REFRESH], token)
    assert replay.status_code == 401
    assert "set-cookie" not in replay.headers
    # the whole family is gone: the current refresh and access cookies too
    assert (await refresh_with(browser, second[REFRESH], token)).status_code == 401
    assert await me_with(browser, {ACCESS: second[ACCESS]}) == 401


async def test_RT_04_a_replay_inside_the_grace_window_keeps_the_family(
    browser: httpx.AsyncClient,
) -> None:
    token = csrf_of(browser)
    first = jar(browser)
    assert (await browser.post("/auth/refresh", headers=same_origin(token))).status_code == 200
    retry = await refresh_with(browser, first[REFRESH], token)
    assert retry.status_code == 200
    assert (await browser.get("/auth/me")).status_code == 200


async def test_an_expired_access_cookie_is_401_and_refresh_recovers(
    browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    clock.advance(PAST_ACCESS_TTL)
    assert (await browser.get("/auth/me")).status_code == 401
    token = csrf_of(browser)
    unsafe = await browser.post("/auth/logout-all", headers=same_origin(token))
    assert unsafe.status_code == 401
    response = await browser.post("/auth/refresh", headers=same_origin(token))
    assert response.status_code == 200, response.text
    assert (await browser.get("/auth/me")).status_code == 200


async def test_an_expired_refresh_family_cannot_be_refreshed(
    browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    clock.advance(timedelta(days=2))  # past the 1-day refresh idle timeout
    response = await browser.post("/auth/refresh", headers=same_origin(csrf_of(browser)))
    assert response.status_code == 401


# --- ending the sign-in ------------------------------------------------------------------


async def test_COOK_08_logout_revokes_the_family_and_clears_both_cookies(
    browser: httpx.AsyncClient,
) -> None:
    before = jar(browser)
    response = await browser.post("/auth/logout", headers=same_origin(csrf_of(browser)))
    assert response.status_code == 204
    cleared = set_cookies(response)
    assert set(cleared) == {ACCESS, REFRESH}
    for cookie in cleared.values():
        assert cookie.value in ("", '""')
        assert cookie.max_age == 0
        assert cookie.attributes["expires"].startswith("Thu, 01 Jan 1970")
        assert cookie.attributes["path"] == "/"
        assert cookie.has("secure")
    assert response.headers["clear-site-data"] == '"cookies", "storage"'
    assert await me_with(browser, {ACCESS: before[ACCESS]}) == 401
    assert (await refresh_with(browser, before[REFRESH], csrf_of(browser))).status_code == 401


async def test_CSRF_01_logout_without_the_token_ends_nothing(
    browser: httpx.AsyncClient,
) -> None:
    response = await browser.post("/auth/logout", headers=same_origin())
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    assert (await browser.get("/auth/me")).status_code == 200


async def test_logout_with_an_expired_access_cookie_needs_the_token_and_revokes_the_family(
    browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """The refresh family proves the sign-in once the access token is dead."""
    before = jar(browser)
    clock.advance(PAST_ACCESS_TTL)
    refused = await browser.post("/auth/logout", headers=same_origin())
    assert refused.status_code == 403
    assert (await refresh_with(browser, before[REFRESH], csrf_of(browser))).status_code == 200
    after = await browser.post("/auth/logout", headers=same_origin(csrf_of(browser)))
    assert after.status_code == 204
    assert set(set_cookies(after)) == {ACCESS, REFRESH}
    assert (
        await browser.post("/auth/refresh", headers=same_origin(csrf_of(browser)))
    ).status_code == 401


async def test_revoking_the_device_from_another_kills_it(
    browser: httpx.AsyncClient, user_email: str
) -> None:
    before = jar(browser)
    me = (await browser.get("/auth/me")).json()
    async with other_client(browser) as laptop:
        signed = await login(laptop, user_email)
        token = signed.json()["csrf_token"]
        response = await laptop.delete(
            f"/auth/sessions/{me['session']['id']}", headers=same_origin(token)
        )
        assert response.status_code == 204, response.text
        assert (await laptop.get("/auth/me")).status_code == 200
    assert await me_with(browser, {ACCESS: before[ACCESS]}) == 401
    assert (await refresh_with(browser, before[REFRESH], csrf_of(browser))).status_code == 401


async def test_ending_the_current_device_kills_it(browser: httpx.AsyncClient) -> None:
    before = jar(browser)
    me = (await browser.get("/auth/me")).json()
    response = await browser.delete(
        f"/auth/sessions/{me['session']['id']}", headers=same_origin(csrf_of(browser))
    )
    assert response.status_code == 204
    assert await me_with(browser, {ACCESS: before[ACCESS]}) == 401
    assert (await refresh_with(browser, before[REFRESH], csrf_of(browser))).status_code == 401


@pytest.mark.parametrize("how", ["end-current-device", "logout-all"])
async def test_COOK_08_ending_the_current_jwt_cookie_device_clears_its_cookies(
    browser: httpx.AsyncClient, how: str
) -> None:
    if how == "logout-all":
        response = await browser.post("/auth/logout-all", headers=same_origin(csrf_of(browser)))
    else:
        me = (await browser.get("/auth/me")).json()
        response = await browser.delete(
            f"/auth/sessions/{me['session']['id']}", headers=same_origin(csrf_of(browser))
        )
    assert response.status_code == 204
    assert set(set_cookies(response)) == {ACCESS, REFRESH}


async def test_a_new_sign_in_revokes_the_previous_family(
    browser: httpx.AsyncClient, user_email: str
) -> None:
    before = jar(browser)
    await login(browser, user_email)
    assert await me_with(browser, {ACCESS: before[ACCESS]}) == 401
    assert (await refresh_with(browser, before[REFRESH], csrf_of(browser))).status_code == 401


# --- Bearer alongside ---------------------------------------------------------------------


@pytest.fixture
async def bearer_token(browser: httpx.AsyncClient, user_email: str) -> str:
    response = await browser.post(
        "/auth/token",
        data={"grant_type": "password", "username": user_email, "password": PASSWORD},
        headers={"Cookie": ""},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def test_bearer_still_works_alongside_the_cookies(
    browser: httpx.AsyncClient, bearer_token: str
) -> None:
    cookie_me = (await browser.get("/auth/me")).json()
    bearer_me = await browser.get("/auth/me", headers={"Authorization": f"Bearer {bearer_token}"})
    assert bearer_me.status_code == 200
    assert bearer_me.json()["session"]["id"] != cookie_me["session"]["id"]  # the header wins


async def test_bearer_requests_need_no_csrf_token_even_cross_site(
    browser: httpx.AsyncClient, bearer_token: str
) -> None:
    before = jar(browser)
    response = await browser.post(
        "/auth/logout",
        headers={
            "Authorization": f"Bearer {bearer_token}",
            "Sec-Fetch-Site": "cross-site",
            "Origin": "https://evil.example",
        },
    )
    assert response.status_code == 204
    assert "set-cookie" not in response.headers  # the bearer family ended, not the cookies
    again = await browser.get("/auth/me", headers={"Authorization": f"Bearer {bearer_token}"})
    assert again.status_code == 401
    assert await me_with(browser, {ACCESS: before[ACCESS]}) == 200


async def test_a_bad_bearer_header_does_not_fall_back_to_the_cookie(
    browser: httpx.AsyncClient,
) -> None:
    response = await browser.post(
        "/auth/logout-all",
        headers={**same_origin(csrf_of(browser)), "Authorization": "Bearer x.y.z"},
    )
    assert response.status_code == 401
    assert (await browser.get("/auth/me")).status_code == 200


async def test_a_reloaded_page_with_an_expired_access_cookie_can_get_a_token_and_refresh(
    browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    clock.advance(PAST_ACCESS_TTL)
    fresh = await browser.get("/auth/csrf", headers=same_origin())
    assert fresh.status_code == 200
    response = await browser.post("/auth/refresh", headers=same_origin(fresh.json()["csrf_token"]))
    assert response.status_code == 200
