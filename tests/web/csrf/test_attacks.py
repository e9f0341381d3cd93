"""CSRF refusals in the house shape, and attacks on the checks: repeated headers, method
overrides, dead sign-ins, planted cookies."""

from __future__ import annotations

import pytest

from tests.support.services import ORIGIN
from tests.web.csrf.helpers import (
    CROSS_SITE,
    FORGED,
    MODES,
    PRESESSION,
    SAME_ORIGIN,
    SESSION,
    UNSAFE,
    Browser,
    Mode,
    assert_csrf_refusal,
    browser_cookie,
    cookie_header,
    other_client,
    send,
)
from velvetrope import AuthService

# --- errors: the house shape, a sentence to act on, no echo -----------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_refusals_say_what_to_do_and_echo_nothing(browser: Browser) -> None:
    missing = await browser.http.post("/auth/logout-all", headers=browser.headers(FORGED))
    assert_csrf_refusal(missing)
    detail = missing.json()["detail"]
    assert "X-CSRF-Token" in detail
    assert "GET /auth/csrf" in detail
    assert "csrf_token" in detail
    cross = await browser.http.post("/auth/logout-all", headers={"Sec-Fetch-Site": "cross-site"})
    assert_csrf_refusal(cross, mentions="cross-site")
    assert ORIGIN in cross.json()["detail"]
    silent = await browser.http.post("/auth/logout-all")
    assert_csrf_refusal(silent, mentions="Origin")
    huge = "https://" + "e" * 5000 + ".example"
    long_origin = await browser.http.post("/auth/logout-all", headers={"Origin": huge})
    assert_csrf_refusal(long_origin)
    assert len(long_origin.text) < 400  # the foreign origin is cut short in the sentence
    for response in (missing, cross, silent, long_origin):
        assert browser.token not in response.text
        assert FORGED not in response.text
        for cookie in browser.http.cookies.jar:
            assert str(cookie.value) not in response.text


# --- attacks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order", ["good first", "bad first", "good twice"])
async def test_attack_repeated_csrf_headers_are_refused(browser: Browser, order: str) -> None:
    """Two X-CSRF-Token lines are one list value (RFC 9110 §5.3), which no token matches."""
    second = browser.token if order == "good twice" else FORGED
    lines = [("X-CSRF-Token", browser.token), ("X-CSRF-Token", second)]
    if order == "bad first":
        lines.reverse()
    before = await browser.state()
    response = await browser.http.post("/auth/logout-all", headers=[*SAME_ORIGIN.items(), *lines])
    assert_csrf_refusal(response)
    joined = await browser.http.post(
        "/auth/logout-all", headers=browser.headers(f"{browser.token}, {browser.token}")
    )
    assert_csrf_refusal(joined)
    assert await browser.state() == before


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "lines",
    [
        pytest.param([("Sec-Fetch-Site", "cross-site"), ("Sec-Fetch-Site", "same-origin")]),
        pytest.param([("Sec-Fetch-Site", "same-origin"), ("Sec-Fetch-Site", "cross-site")]),
        pytest.param([("Origin", "https://evil.example"), ("Origin", ORIGIN)]),
        pytest.param([("Origin", ORIGIN), ("Origin", "https://evil.example")]),
        pytest.param([("Referer", "https://evil.example/"), ("Referer", f"{ORIGIN}/")]),
        pytest.param([("Origin", ORIGIN), ("Origin", ORIGIN)]),
    ],
)
async def test_attack_repeated_browser_headers_are_refused(
    browser: Browser, lines: list[tuple[str, str]]
) -> None:
    """Browsers send each once; which line would count is not a guess worth making."""
    before = await browser.state()
    response = await browser.http.post(
        "/auth/logout-all", headers=[*lines, ("X-CSRF-Token", browser.token)]
    )
    assert_csrf_refusal(response, mentions="repeats")
    assert await browser.state() == before


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["x-csrf-token", "X-CSRF-TOKEN", "x-CsRf-ToKeN"])
async def test_attack_the_header_name_is_case_insensitive(browser: Browser, name: str) -> None:
    response = await browser.http.post(
        "/auth/logout-all", headers={**SAME_ORIGIN, name: browser.token}
    )
    assert response.status_code == 204


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "override",
    [
        {"X-HTTP-Method-Override": "GET"},
        {"X-HTTP-Method": "GET"},
        {"X-Method-Override": "HEAD"},
    ],
)
async def test_attack_method_override_headers_do_not_make_a_post_safe(
    browser: Browser, override: dict[str, str]
) -> None:
    before = await browser.state()
    for name in ("logout", "logout-all"):
        response = await send(browser, name, {**browser.headers(token=None), **override})
        assert_csrf_refusal(response)
        query = await browser.http.post(
            UNSAFE[name][1], params={"_method": "GET"}, headers=browser.headers(token=None)
        )
        assert_csrf_refusal(query)
    assert await browser.state() == before


@pytest.mark.parametrize("mode", MODES)
async def test_attack_method_override_does_not_turn_a_safe_request_into_a_change(
    browser: Browser,
) -> None:
    before = await browser.state()
    override = {**browser.headers(), "X-HTTP-Method-Override": "POST"}
    assert (await browser.http.get("/auth/logout-all", headers=override)).status_code == 405
    other = f"/auth/sessions/{browser.other}"
    delete = {**browser.headers(), "X-HTTP-Method-Override": "DELETE"}
    assert (await browser.http.post(other, headers=delete)).status_code == 405
    assert (await browser.http.get(other, params={"_method": "DELETE"})).status_code == 405
    assert await browser.state() == before


@pytest.mark.parametrize("mode", MODES)
async def test_attack_logout_of_a_dead_sign_in_needs_no_token_and_ends_nothing_else(
    browser: Browser, service: AuthService, mode: Mode
) -> None:
    """Nothing to protect: the credential is dead, so the 204 only clears cookies."""
    if mode == "session":
        await service.end_session_id(browser_cookie(browser.http, SESSION))
    else:
        me = (await browser.http.get("/auth/me")).json()
        await service.tokens.revoke_family(me["session"]["id"])
    response = await browser.http.post("/auth/logout", headers=browser.headers(token=None))
    assert response.status_code == 204
    assert response.headers.get_list("set-cookie")
    assert await browser.other_alive()
    cross = await browser.http.post("/auth/logout", headers=CROSS_SITE)
    assert cross.status_code in {204, 403}


@pytest.mark.parametrize("mode", MODES)
async def test_attack_a_cookie_planted_beside_a_bearer_header_stays_untouched(
    browser: Browser, bearer: str, user_email: str
) -> None:
    """A request with both: the header is the credential, and only its device ends."""
    before = await browser.state()
    headers = {**CROSS_SITE, "Authorization": f"Bearer {bearer}"}
    response = await browser.http.post("/auth/logout-all", headers=headers)
    assert response.status_code == 204  # a fresh bearer sign-in is recent enough
    assert (await browser.http.get("/auth/me")).status_code == 401  # logout-all means all
    assert before.me == 200


@pytest.mark.parametrize("mode", ["jwt-cookie"])
async def test_attack_refresh_cannot_borrow_the_bearer_exemption(browser: Browser) -> None:
    """POST /auth/refresh reads only the refresh cookie; a junk Bearer header beside it
    must not skip the origin and token checks."""
    before = await browser.state()
    junk = {"Authorization": "Bearer not.a.token"}
    cross = await browser.http.post(
        "/auth/refresh", headers={**CROSS_SITE, **junk, "X-CSRF-Token": browser.token}
    )
    assert_csrf_refusal(cross)
    tokenless = await browser.http.post("/auth/refresh", headers={**SAME_ORIGIN, **junk})
    assert_csrf_refusal(tokenless)
    assert await browser.state() == before


@pytest.mark.parametrize("mode", MODES)
async def test_attack_a_pre_session_token_of_the_victims_own_cookie_is_no_session_token(
    browser: Browser,
) -> None:
    """Signed in, the browser still holds no pre-session cookie; planting one and using a
    token minted for it does not pass as the session's token."""
    async with other_client(browser.http) as attacker:
        planted = await attacker.get("/auth/csrf", headers=SAME_ORIGIN)
    nonce = planted.cookies[PRESESSION]
    token = planted.json()["csrf_token"]
    headers = {
        **browser.headers(token),
        "Cookie": f"{cookie_header(browser.http)}; {PRESESSION}={nonce}",
    }
    before = await browser.state()
    assert_csrf_refusal(await browser.http.post("/auth/logout-all", headers=headers))
    assert await browser.state() == before
