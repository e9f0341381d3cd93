"""CSRF-01, CSRF-02, CSRF-04: the token is needed, bound to the credential, and renewed
with every sign-in."""

from __future__ import annotations

import httpx
import pytest

from tests.support.services import PASSWORD
from tests.web.csrf.helpers import (
    COOKIE_ROUTES,
    ENDPOINTS,
    FORGED,
    MODES,
    SAME_ORIGIN,
    SESSION,
    UNSAFE,
    Binding,
    Browser,
    Mode,
    assert_csrf_refusal,
    assert_route_refusal,
    browser_cookie,
    cookie_header,
    other_client,
    password_unchanged,
    send,
    send_to_route,
    sign_in,
)
from velvetrope import AuthService, Velvetrope
from velvetrope.core.csrf import family_binding, presession_binding, session_binding
from velvetrope.core.ids import secret_digest

# --- CSRF-01: a cookie alone never authorises a state change ----------------------------------


@pytest.mark.parametrize(("mode", "method", "path"), COOKIE_ROUTES)
async def test_CSRF_01_a_valid_cookie_without_a_token_is_refused_and_changes_nothing(
    browser: Browser, service: AuthService, method: str, path: str
) -> None:
    """Every unsafe route of the app (walked from it, pages included) but the token-free
    ones (``TOKEN_FREE``, each with its reason)."""
    before = await browser.state(credentials_only=True)
    response = await send_to_route(browser, method, path, browser.headers(token=None))
    assert_route_refusal(response, path, mentions="X-CSRF-Token")
    assert await browser.state(credentials_only=True) == before
    assert await password_unchanged(service, browser.email)


@pytest.mark.parametrize(("mode", "name"), ENDPOINTS)
@pytest.mark.parametrize(
    "where", ["cookie", "query string", "json body", "other header name", "empty header"]
)
async def test_CSRF_01_the_token_counts_only_in_the_header_or_a_form_field(
    browser: Browser, name: str, where: str
) -> None:
    """The right token in the wrong place: a cookie (naive double-submit), the URL, a JSON
    member, a look-alike header (Django's, Angular's), an empty header."""
    headers = browser.headers(token=None)
    params = None
    json_body: object = None
    if where == "cookie":
        headers["Cookie"] = f"{cookie_header(browser.http)}; csrf_token={browser.token}"
    elif where == "query string":
        params = {"csrf_token": browser.token}
    elif where == "json body":
        json_body = {**(UNSAFE[name][2] or {}), "csrf_token": browser.token}
    elif where == "other header name":
        headers["X-CSRFToken"] = browser.token
        headers["X-XSRF-Token"] = browser.token
        headers["CSRF-Token"] = browser.token
    else:
        headers["X-CSRF-Token"] = ""
    before = await browser.state()
    response = await send(browser, name, headers, params=params, json=json_body)
    assert_csrf_refusal(response)
    assert await browser.state() == before


@pytest.mark.parametrize(("mode", "name"), ENDPOINTS)
async def test_CSRF_01_with_the_token_the_same_requests_succeed(
    browser: Browser, name: str
) -> None:
    """The positive control for the refusals above."""
    response = await send(browser, name, browser.headers())
    assert response.status_code in {200, 202, 204}, response.text


# --- CSRF-02: bound to the credential ---------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_02_a_token_of_session_a_is_refused_on_session_b(
    browser: Browser, service: AuthService
) -> None:
    """Mallory signs in herself, reads her own token and puts it in a page for Ann."""
    await service.register("mallory@example.com", PASSWORD)
    async with other_client(browser.http) as mallory:
        mallorys_token = await sign_in(mallory, "mallory@example.com")
    before = await browser.state()
    for name in ("logout-all", "logout", "password"):
        response = await send(browser, name, browser.headers(token=mallorys_token))
        assert_csrf_refusal(response)
    assert await browser.state() == before


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_02_a_token_of_another_device_of_the_same_user_is_refused(
    browser: Browser, user_email: str
) -> None:
    async with other_client(browser.http) as laptop:
        laptops_token = await sign_in(laptop, user_email)
        response = await laptop.post("/auth/logout-all", headers=browser.headers())
        assert_csrf_refusal(response)
        assert (await laptop.get("/auth/me")).status_code == 200
    response = await browser.http.post("/auth/logout-all", headers=browser.headers(laptops_token))
    assert_csrf_refusal(response)


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_02_a_forged_token_is_refused(browser: Browser) -> None:
    token = browser.token
    tampered = token[:-1] + ("B" if token[-1] == "A" else "A")
    for candidate in (FORGED, tampered, token + token):
        response = await browser.http.post("/auth/logout-all", headers=browser.headers(candidate))
        assert_csrf_refusal(response)


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_02_a_token_for_another_kind_of_binding_is_refused(
    browser: Browser, vr: Velvetrope, mode: Mode
) -> None:
    """Minted with the real secret for the very value the credential is bound to (the
    session digest, the family id), but as another kind of binding: another mode's token
    or a pre-session token. The right kind is the positive control."""
    right: Binding
    wrong: tuple[Binding, ...]
    if mode == "session":
        value = secret_digest(browser_cookie(browser.http, SESSION))
        right, wrong = session_binding, (family_binding, presession_binding)
    else:
        value = (await browser.http.get("/auth/me")).json()["session"]["id"]
        right, wrong = family_binding, (session_binding, presession_binding)
    tokens = vr.service.csrf
    for binding in wrong:
        headers = browser.headers(tokens.issue(binding(value)))
        assert_csrf_refusal(await browser.http.post("/auth/logout-all", headers=headers))
    headers = browser.headers(tokens.issue(right(value)))
    assert (await browser.http.post("/auth/logout-all", headers=headers)).status_code == 204


# --- CSRF-04: a new sign-in, a new token ------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_04_a_pre_session_token_is_no_session_token_after_login(
    bare_client: httpx.AsyncClient, user_email: str
) -> None:
    presession = await bare_client.get("/auth/csrf", headers=SAME_ORIGIN)
    assert presession.status_code == 200
    before_login = presession.json()["csrf_token"]
    form = {"email": user_email, "password": PASSWORD, "csrf_token": before_login}
    login = await bare_client.post("/auth/login", data=form, headers=SAME_ORIGIN)
    assert login.status_code == 200, login.text
    after_login = login.json()["csrf_token"]
    assert after_login != before_login
    refused = await bare_client.post(
        "/auth/logout-all", headers={**SAME_ORIGIN, "X-CSRF-Token": before_login}
    )
    assert_csrf_refusal(refused)
    assert (await bare_client.get("/auth/me")).status_code == 200
    ok = await bare_client.post(
        "/auth/logout-all", headers={**SAME_ORIGIN, "X-CSRF-Token": after_login}
    )
    assert ok.status_code == 204


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_04_a_token_from_before_signing_in_again_is_refused(browser: Browser) -> None:
    old = browser.token
    new = await sign_in(browser.http, browser.email)
    assert new != old
    assert_csrf_refusal(await browser.http.post("/auth/logout-all", headers=browser.headers(old)))
    ok = await browser.http.post("/auth/logout-all", headers=browser.headers(new))
    assert ok.status_code == 204


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_04_reauth_rotates_the_token(browser: Browser) -> None:
    reauth = await browser.http.post(
        "/auth/reauth", json={"password": PASSWORD}, headers=browser.headers()
    )
    assert reauth.status_code == 200, reauth.text
    new = reauth.json()["csrf_token"]
    assert new != browser.token
    stale = await browser.http.post("/auth/logout-all", headers=browser.headers())
    assert_csrf_refusal(stale)
    ok = await browser.http.post("/auth/logout-all", headers=browser.headers(new))
    assert ok.status_code == 204


async def test_CSRF_04_a_password_change_rotates_the_session_and_its_token(
    browser: Browser,
) -> None:
    """The new session needs a new token, which GET /auth/csrf hands out (the 204 of
    POST /auth/password carries none)."""
    change = await send(browser, "password", browser.headers())
    assert change.status_code == 204, change.text
    assert (await browser.http.get("/auth/me")).status_code == 200
    stale = await browser.http.post("/auth/logout-all", headers=browser.headers())
    assert_csrf_refusal(stale)
    fresh = (await browser.http.get("/auth/csrf", headers=SAME_ORIGIN)).json()["csrf_token"]
    ok = await browser.http.post("/auth/logout-all", headers=browser.headers(fresh))
    assert ok.status_code == 204


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_04_get_csrf_when_signed_in_gives_a_token_of_the_sign_in(
    browser: Browser,
) -> None:
    response = await browser.http.get("/auth/csrf", headers=SAME_ORIGIN)
    assert response.status_code == 200
    assert "set-cookie" not in response.headers  # no pre-session cookie for a signed-in browser
    token = response.json()["csrf_token"]
    assert token != browser.token
    ok = await browser.http.post("/auth/logout-all", headers=browser.headers(token))
    assert ok.status_code == 204
