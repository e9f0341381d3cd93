"""CSRF-05, CSRF-06, CSRF-07, CSRF-10: where an unsafe request comes from (Go's
CrossOriginProtection table), trusted origins, the configured target origin, ``Vary``."""

from __future__ import annotations

import httpx
import pytest

from tests.support.services import ORIGIN, PASSWORD
from tests.web.csrf.helpers import (
    CROSS_SITE,
    MODES,
    SAME_ORIGIN,
    SERVER_ROUTES,
    TRUSTED,
    Browser,
    assert_csrf_refusal,
    other_client,
    password_unchanged,
    send,
    send_to_route,
    vary_of,
)
from velvetrope import AuthService

# --- CSRF-05 / CSRF-06: where the request comes from (Go's CrossOriginProtection table) -------


# (headers, allowed) for an unsafe request that carries a live cookie and the right token.
# The first block ports src/net/http/csrf_test.go (Go 1.25) with the configured origin in
# place of the Host; the rest are velvetrope's own: look-alikes, Referer, odd values.
ORIGIN_TABLE: dict[str, tuple[dict[str, str], bool]] = {
    # TestCrossOriginProtectionSecFetchSite
    "sec-fetch-site same-origin": ({"Sec-Fetch-Site": "same-origin"}, True),
    "sec-fetch-site none": ({"Sec-Fetch-Site": "none"}, True),
    "sec-fetch-site cross-site": ({"Sec-Fetch-Site": "cross-site"}, False),
    "sec-fetch-site same-site": ({"Sec-Fetch-Site": "same-site"}, False),
    "no header, no origin, a cookie": ({}, False),  # Go allows; a cookie makes us refuse
    "no header, matching origin": ({"Origin": ORIGIN}, True),
    "no header, mismatched origin": ({"Origin": "https://attacker.example"}, False),
    "no header, null origin": ({"Origin": "null"}, False),
    # Sec-Fetch-Site decides when present (browsers never send it with a false Origin)
    "same-origin beats a foreign origin": (
        {"Sec-Fetch-Site": "same-origin", "Origin": "https://attacker.example"},
        True,
    ),
    "cross-site beats a matching origin": (
        {"Sec-Fetch-Site": "cross-site", "Origin": ORIGIN},
        False,
    ),
    "same-site with a matching origin": ({"Sec-Fetch-Site": "same-site", "Origin": ORIGIN}, False),
    # odd Sec-Fetch-Site values: only the two exact lowercase words pass
    "sec-fetch-site empty": ({"Sec-Fetch-Site": ""}, False),
    "sec-fetch-site Same-Origin": ({"Sec-Fetch-Site": "Same-Origin"}, False),
    "sec-fetch-site SAME-ORIGIN": ({"Sec-Fetch-Site": "SAME-ORIGIN"}, False),
    "sec-fetch-site same_origin": ({"Sec-Fetch-Site": "same_origin"}, False),
    "sec-fetch-site list": ({"Sec-Fetch-Site": "same-origin, cross-site"}, False),
    "sec-fetch-site unknown": ({"Sec-Fetch-Site": "trusted"}, False),
    "sec-fetch-site None": ({"Sec-Fetch-Site": "None"}, False),
    # exact scheme + host + port (CSRF-06)
    "look-alike suffix": ({"Origin": "https://testserver.evil.example"}, False),
    "look-alike prefix": ({"Origin": "https://eviltestserver"}, False),
    "look-alike subdomain": ({"Origin": "https://sub.testserver"}, False),
    "look-alike userinfo": ({"Origin": "https://testserver@evil.example"}, False),
    "look-alike trailing dot": ({"Origin": "https://testserver."}, False),
    "scheme http": ({"Origin": "http://testserver"}, False),
    "scheme wss": ({"Origin": "wss://testserver"}, False),
    "port 8443": ({"Origin": "https://testserver:8443"}, False),
    "explicit default port": ({"Origin": "https://testserver:443"}, False),
    "trailing slash": ({"Origin": "https://testserver/"}, False),
    "upper case": ({"Origin": "HTTPS://TESTSERVER"}, False),
    "two origins in one": ({"Origin": f"{ORIGIN} https://attacker.example"}, False),
    "origin with a path": ({"Origin": f"{ORIGIN}/auth"}, False),
    "empty origin": ({"Origin": ""}, False),
    # Referer only when Origin is absent
    "referer same origin": ({"Referer": f"{ORIGIN}/account?tab=devices"}, True),
    "referer upper-case host": ({"Referer": "https://TESTSERVER/account"}, True),
    "referer look-alike host": ({"Referer": "https://testserver.evil.example/"}, False),
    "referer look-alike userinfo": ({"Referer": "https://testserver@evil.example/"}, False),
    "referer origin in the path": ({"Referer": f"https://evil.example/{ORIGIN}/"}, False),
    "referer origin in the query": ({"Referer": f"https://evil.example/?r={ORIGIN}"}, False),
    "referer http": ({"Referer": "http://testserver/account"}, False),
    "referer other port": ({"Referer": "https://testserver:8443/account"}, False),
    "referer not a url": ({"Referer": "testserver/account"}, False),
    "referer garbage": ({"Referer": "::::"}, False),
    "null origin beats a good referer": ({"Origin": "null", "Referer": f"{ORIGIN}/"}, False),
    "foreign origin beats a good referer": (
        {"Origin": "https://attacker.example", "Referer": f"{ORIGIN}/"},
        False,
    ),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("headers", "allowed"), list(ORIGIN_TABLE.values()), ids=list(ORIGIN_TABLE)
)
async def test_CSRF_05_CSRF_06_origin_truth_table_for_cookie_requests(
    browser: Browser, headers: dict[str, str], allowed: bool
) -> None:
    before = await browser.state()
    response = await browser.http.post(
        "/auth/logout", headers={**headers, "X-CSRF-Token": browser.token}
    )
    if allowed:
        assert response.status_code == 204, response.text
    else:
        assert_csrf_refusal(response)
        assert ORIGIN in response.json()["detail"]
        assert await browser.state() == before


LOGIN_TABLE: dict[str, tuple[dict[str, str], bool]] = {
    "no header, no origin (not a browser)": ({}, True),
    "matching origin": ({"Origin": ORIGIN}, True),
    "same-origin": ({"Sec-Fetch-Site": "same-origin"}, True),
    "cross-site": ({"Sec-Fetch-Site": "cross-site"}, False),
    "same-site": ({"Sec-Fetch-Site": "same-site"}, False),
    "foreign origin": ({"Origin": "https://attacker.example"}, False),
    "null origin": ({"Origin": "null"}, False),
    "look-alike origin": ({"Origin": "https://testserver.evil.example"}, False),
    "look-alike referer": ({"Referer": "https://testserver.evil.example/signin"}, False),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("headers", "allowed"), list(LOGIN_TABLE.values()), ids=list(LOGIN_TABLE))
async def test_CSRF_05_CSRF_06_origin_truth_table_for_sign_in_without_cookies(
    bare_client: httpx.AsyncClient, user_email: str, headers: dict[str, str], allowed: bool
) -> None:
    """Login CSRF: a cross-site page must not sign the victim in as the attacker."""
    response = await bare_client.post(
        "/auth/login", json={"email": user_email, "password": PASSWORD}, headers=headers
    )
    if allowed:
        assert response.status_code == 200, response.text
    else:
        assert_csrf_refusal(response)
        assert not bare_client.cookies.jar


@pytest.mark.parametrize(("mode", "method", "path"), SERVER_ROUTES)
async def test_CSRF_05_every_unsafe_route_refuses_a_cross_site_request_even_with_the_token(
    browser: Browser, service: AuthService, method: str, path: str
) -> None:
    """Every unsafe route of the app, walked from it: pages, token-free routes included."""
    before = await browser.state()
    headers = {**CROSS_SITE, "X-CSRF-Token": browser.token}
    response = await send_to_route(browser, method, path, headers)
    assert_csrf_refusal(response, mentions="cross-site")
    assert await browser.state() == before
    assert await password_unchanged(service, browser.email)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
async def test_CSRF_05_safe_methods_are_not_refused_cross_site(
    browser: Browser, method: str
) -> None:
    """Go's "GET/HEAD/OPTIONS allowed": they change nothing, so where they come from
    does not matter (reading the answer is what CORS guards)."""
    before = await browser.state()
    response = await browser.http.request(
        method, "/auth/me", headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://a.example"}
    )
    assert response.status_code != 403
    if method == "GET":
        assert response.status_code == 200
    assert await browser.state() == before


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "POST", "PROPFIND"])
async def test_CSRF_05_every_other_method_is_checked(browser: Browser, method: str) -> None:
    """Go's "PUT blocked": refused before routing, whatever the method."""
    response = await browser.http.request(
        method,
        "/auth/logout",
        headers={"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": browser.token},
    )
    assert_csrf_refusal(response)


# --- CSRF-05: trusted (CORS-allowlisted) origins ----------------------------------------------


TRUSTED_TABLE: dict[str, tuple[dict[str, str], bool]] = {
    # TestCrossOriginProtectionTrustedOriginBypass
    "trusted origin without sec-fetch-site": ({"Origin": TRUSTED}, True),
    "trusted origin with cross-site": ({"Origin": TRUSTED, "Sec-Fetch-Site": "cross-site"}, True),
    "trusted origin with same-site": ({"Origin": TRUSTED, "Sec-Fetch-Site": "same-site"}, True),
    "untrusted origin without sec-fetch-site": ({"Origin": "https://attacker.example"}, False),
    "untrusted origin with cross-site": (
        {"Origin": "https://attacker.example", "Sec-Fetch-Site": "cross-site"},
        False,
    ),
    "cross-site without an origin": ({"Sec-Fetch-Site": "cross-site"}, False),
    "look-alike of the trusted origin": (
        {"Origin": "https://app.example.com.evil.example", "Sec-Fetch-Site": "cross-site"},
        False,
    ),
    "trusted host, other scheme": ({"Origin": "http://app.example.com"}, False),
    "trusted host, other port": ({"Origin": "https://app.example.com:8443"}, False),
    "trusted referer is not enough with cross-site": (
        {"Referer": f"{TRUSTED}/", "Sec-Fetch-Site": "cross-site"},
        False,
    ),
    "trusted referer without headers": ({"Referer": f"{TRUSTED}/page"}, True),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("headers", "allowed"), list(TRUSTED_TABLE.values()), ids=list(TRUSTED_TABLE)
)
async def test_CSRF_05_trusted_origins_pass_the_origin_check(
    cors_browser: Browser, headers: dict[str, str], allowed: bool
) -> None:
    response = await cors_browser.http.post(
        "/auth/logout", headers={**headers, "X-CSRF-Token": cors_browser.token}
    )
    if allowed:
        assert response.status_code == 204, response.text
    else:
        assert_csrf_refusal(response)


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_05_a_trusted_origin_still_needs_the_token(cors_browser: Browser) -> None:
    before = await cors_browser.state()
    headers = {"Origin": TRUSTED, "Sec-Fetch-Site": "cross-site"}
    response = await cors_browser.http.post("/auth/logout-all", headers=headers)
    assert_csrf_refusal(response, mentions="X-CSRF-Token")
    assert await cors_browser.state() == before


# --- CSRF-07: the target origin is configuration, never the Host ------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "spoof",
    [
        {"Host": "evil.example"},
        {"X-Forwarded-Host": "evil.example"},
        {"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
        {"Forwarded": "host=evil.example;proto=https"},
        {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"},
    ],
)
async def test_CSRF_07_a_spoofed_host_with_a_matching_origin_is_refused(
    browser: Browser, spoof: dict[str, str]
) -> None:
    before = await browser.state()
    headers = {**spoof, "Origin": "https://evil.example", "X-CSRF-Token": browser.token}
    response = await browser.http.post("/auth/logout", headers=headers)
    assert_csrf_refusal(response)
    assert await browser.state() == before


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_07_the_configured_origin_passes_whatever_the_host_says(
    browser: Browser,
) -> None:
    headers = {
        "Host": "internal-node-7:8000",
        "X-Forwarded-Host": "evil.example",
        "Origin": ORIGIN,
        "X-CSRF-Token": browser.token,
    }
    assert (await browser.http.post("/auth/logout", headers=headers)).status_code == 204


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_07_forwarded_scheme_does_not_change_the_target(browser: Browser) -> None:
    headers = {
        "X-Forwarded-Proto": "http",
        "Origin": "http://testserver",
        "X-CSRF-Token": browser.token,
    }
    assert_csrf_refusal(await browser.http.post("/auth/logout", headers=headers))


# --- CSRF-10: Vary ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_10_unsafe_responses_vary_on_sec_fetch_site_and_origin(
    browser: Browser,
) -> None:
    responses = [
        await browser.http.post("/auth/logout-all", headers={"Sec-Fetch-Site": "cross-site"}),
        await browser.http.post("/auth/logout-all", headers=browser.headers(token=None)),
        await browser.http.post("/auth/reauth", content=b"x", headers=browser.headers()),
        await send(browser, "reauth", browser.headers()),
    ]
    async with other_client(browser.http) as anonymous:
        responses.append(await anonymous.post("/auth/logout-all", headers=SAME_ORIGIN))
        responses.append(
            await anonymous.post(
                "/auth/login",
                json={"email": browser.email, "password": PASSWORD},
                headers=SAME_ORIGIN,
            )
        )
    assert [r.status_code for r in responses] == [403, 403, 415, 200, 401, 200]
    for response in responses:
        assert {"sec-fetch-site", "origin"} <= vary_of(response), response.request.url
