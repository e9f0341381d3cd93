"""CSRF defence over HTTP, one test group per checklist line (CSRF-01..CSRF-12), then attacks.

Every request here is built by hand on ``bare_client``: the headers a browser would send
(``Origin``, ``Sec-Fetch-Site``, ``Referer``), the cookies it holds, and the token when
the test says so. Both browser credentials are covered where they apply: the session
cookie and JWT-in-cookie (access + refresh cookies). The store does not change what
these checks decide, so most tests use the memory backend; the state-changing ones run
on every backend.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.requests import Request

from tests.support.cookies import parse_set_cookie
from tests.support.services import ORIGIN, PASSWORD
from tests.support.stores import BACKENDS
from velvetrope import AuthService, Principal, Settings, Velvetrope, create_app
from velvetrope.core.csrf import family_binding, presession_binding, session_binding
from velvetrope.core.ids import secret_digest
from velvetrope.errors import AuthError
from velvetrope.settings import describe_validation_error
from velvetrope.web.errors import install_error_handlers

Mode = Literal["session", "jwt-cookie"]
Binding = Callable[[str], str]
MODES: list[Mode] = ["session", "jwt-cookie"]
NEW_PASSWORD = "a brand new passphrase for ann"
SESSION = "__Host-velvetrope-session"
ACCESS = "__Host-velvetrope-access"
REFRESH = "__Host-velvetrope-refresh"
PRESESSION = "__Host-velvetrope-csrf"
SAME_ORIGIN = {"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"}
TRUSTED = "https://app.example.com"
FORGED = "A" * 22 + "." + "A" * 43


@pytest.fixture
def backend() -> str:
    """The memory store, unless a test parametrises ``backend`` itself."""
    return "memory"


@pytest.fixture
def mode() -> Mode:
    """Session mode, unless a test parametrises ``mode`` itself."""
    return "session"


@pytest.fixture
def settings(mode: Mode) -> Settings:
    return Settings(
        database_url="memory://", public_origin=ORIGIN, browser_credentials=mode, _env_file=None
    )


# --- a browser, built by hand ---------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """What a browser can observe of its sign-in."""

    me: int
    session: str | None
    devices: tuple[str, ...]
    cookies: tuple[tuple[str, str], ...]
    other_alive: bool


@dataclass
class Browser:
    """A signed-in browser: its client (cookie jar), its CSRF token, and a second device
    of the same user whose liveness tells whether a refused request ended it."""

    http: httpx.AsyncClient
    token: str
    email: str
    other: str
    other_alive: Callable[[], Awaitable[bool]]

    def headers(self, token: str | None = "mine", **extra: str) -> dict[str, str]:  # noqa: S107 - a sentinel
        """Same-origin fetch() headers, with this browser's token unless told otherwise."""
        headers = dict(SAME_ORIGIN)
        if token == "mine":
            headers["X-CSRF-Token"] = self.token
        elif token is not None:
            headers["X-CSRF-Token"] = token
        return {**headers, **extra}

    async def state(self, *, credentials_only: bool = False) -> State:
        """What a refused request must not change: who this is, the devices, the cookies
        (only the credential cookies, not the sign-in form's, if told)."""
        me = await self.http.get("/auth/me")
        devices = await self.http.get("/auth/sessions")
        ids = sorted(d["id"] for d in devices.json()) if devices.status_code == 200 else []
        session = me.json()["session"]["id"] if me.status_code == 200 else None
        cookies = sorted(
            (c.name, c.value or "")
            for c in self.http.cookies.jar
            if not (credentials_only and c.name == PRESESSION)
        )
        return State(me.status_code, session, tuple(ids), tuple(cookies), await self.other_alive())


async def sign_in(http: httpx.AsyncClient, email: str) -> str:
    """Sign ``http`` in (JSON, same origin); return the CSRF token."""
    response = await http.post(
        "/auth/login", json={"email": email, "password": PASSWORD}, headers=SAME_ORIGIN
    )
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


async def second_device(service: AuthService, email: str, mode: Mode) -> tuple[str, Any]:
    """Another device of the user: its handle, and a check that it is still signed in."""
    if mode == "session":
        sign_in_ = await service.login(email, PASSWORD)
        secret = sign_in_.session.secret

        async def alive() -> bool:
            try:
                await service.authenticate(secret)
            except AuthError:
                return False
            return True

        return sign_in_.session.record.handle, alive
    pair = await service.token_login(email, PASSWORD)

    async def alive_family() -> bool:
        try:
            await service.authenticate_bearer(pair.access_token)
        except AuthError:
            return False
        return True

    return pair.family.id, alive_family


@pytest.fixture
async def browser(
    bare_client: httpx.AsyncClient, service: AuthService, user_email: str, mode: Mode
) -> Browser:
    handle, alive = await second_device(service, user_email, mode)
    token = await sign_in(bare_client, user_email)
    return Browser(bare_client, token, user_email, handle, alive)


def other_client(http: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client on the same app with an empty cookie jar."""
    return httpx.AsyncClient(transport=http._transport, base_url=str(http.base_url))


def browser_cookie(http: httpx.AsyncClient, name: str) -> str:
    value = next((c.value for c in http.cookies.jar if c.name == name), None)
    assert value, f"no {name} cookie"
    return value


def cookie_header(http: httpx.AsyncClient) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies.jar)


def assert_csrf_refusal(response: httpx.Response, *, mentions: str | None = None) -> None:
    """403 ``csrf_failed`` in the house shape, with a sentence, setting no cookie."""
    assert response.status_code == 403, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == "csrf_failed"
    detail = body["detail"]
    assert len(detail) > 30
    assert detail[0].isupper()
    assert detail.endswith(".")
    if mentions is not None:
        assert mentions in detail
    assert "set-cookie" not in response.headers


# --- the unsafe endpoints a cookie authenticates ---------------------------------------------

UNSAFE: dict[str, tuple[str, str, dict[str, str] | None]] = {
    "logout": ("POST", "/auth/logout", None),
    "logout-all": ("POST", "/auth/logout-all", None),
    "reauth": ("POST", "/auth/reauth", {"password": PASSWORD}),
    "password": (
        "POST",
        "/auth/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    ),
    "end-session": ("DELETE", "/auth/sessions/{other}", None),
    "refresh": ("POST", "/auth/refresh", None),
}
ENDPOINTS = [
    pytest.param(mode, name, id=f"{mode}-{name}")
    for mode in MODES
    for name in UNSAFE
    if not (name == "refresh" and mode == "session")
]


async def send(
    browser: Browser,
    name: str,
    headers: Mapping[str, str],
    *,
    params: Mapping[str, str] | None = None,
    json: object = None,
) -> httpx.Response:
    """Call the unsafe endpoint ``name`` with ``headers``; its JSON body unless given."""
    method, path, body = UNSAFE[name]
    return await browser.http.request(
        method,
        path.format(other=browser.other),
        json=json if json is not None else body,
        headers=dict(headers),
        params=params,
    )


async def password_unchanged(service: AuthService, email: str) -> bool:
    try:
        await service.users.authenticate(email, PASSWORD)
    except AuthError:
        return False
    return True


# --- CSRF-01: a cookie alone never authorises a state change ----------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("mode", "name"), ENDPOINTS)
async def test_CSRF_01_a_valid_cookie_without_a_token_is_refused_and_changes_nothing(
    browser: Browser, service: AuthService, name: str
) -> None:
    before = await browser.state()
    response = await send(browser, name, browser.headers(token=None))
    assert_csrf_refusal(response, mentions="X-CSRF-Token")
    assert await browser.state() == before
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
    assert response.status_code in {200, 204}, response.text


# --- CSRF-02: bound to the credential ---------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
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


@pytest.mark.parametrize("backend", BACKENDS)
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


@pytest.fixture
def cors_settings(mode: Mode) -> Settings:
    return Settings(
        database_url="memory://",
        public_origin=ORIGIN,
        browser_credentials=mode,
        cors_origins=f"{TRUSTED}, https://admin.example.com",
        _env_file=None,
    )


@pytest.fixture
async def cors_browser(
    cors_settings: Settings, service: AuthService, user_email: str
) -> AsyncIterator[Browser]:
    vr = Velvetrope(cors_settings, service=service)
    transport = httpx.ASGITransport(app=create_app(velvetrope=vr))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        handle, alive = await second_device(service, user_email, cors_settings.browser_credentials)
        yield Browser(http, await sign_in(http, user_email), user_email, handle, alive)


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


# --- CSRF-07: the target origin is configuration, never the Host ----------------------------


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


# --- CSRF-08: simple content types ------------------------------------------------------------

SIMPLE_BODIES: dict[str, tuple[str | None, dict[str, Any]]] = {
    "text/plain": ("text/plain", {"content": f'{{"password": "{PASSWORD}"}}'.encode()}),
    "text/plain form-shaped": (
        "text/plain;charset=UTF-8",
        {"content": b"password=correct+horse+battery+staple"},
    ),
    "multipart": (None, {"files": {"password": (None, PASSWORD)}}),
    "form-encoded": (None, {"data": {"password": PASSWORD}}),
}


def simple_body(kind: str, headers: dict[str, str]) -> dict[str, Any]:
    """httpx keyword arguments for a ``kind`` body sent with ``headers``."""
    content_type, body = SIMPLE_BODIES[kind]
    if content_type is not None:
        headers = {**headers, "Content-Type": content_type}
    return {**body, "headers": headers}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", ["/auth/reauth", "/auth/password", "/auth/logout-all"])
@pytest.mark.parametrize("kind", SIMPLE_BODIES)
async def test_CSRF_08_bodies_a_cross_site_form_can_send_are_refused(
    browser: Browser, service: AuthService, path: str, kind: str
) -> None:
    """What an attacker's <form> (or a no-cors fetch) can send: cookie yes, header no."""
    before = await browser.state()
    response = await browser.http.post(path, **simple_body(kind, SAME_ORIGIN))
    assert_csrf_refusal(response)
    assert await browser.state() == before
    assert await password_unchanged(service, browser.email)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", ["/auth/reauth", "/auth/password"])
@pytest.mark.parametrize("kind", ["text/plain", "text/plain form-shaped", "multipart"])
async def test_CSRF_08_json_endpoints_refuse_simple_types_even_with_the_token(
    browser: Browser, service: AuthService, path: str, kind: str
) -> None:
    before = await browser.state()
    response = await browser.http.post(path, **simple_body(kind, browser.headers()))
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert "set-cookie" not in response.headers
    assert await browser.state() == before
    assert await password_unchanged(service, browser.email)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["text/plain", "multipart"])
async def test_CSRF_08_sign_in_refuses_simple_types(
    bare_client: httpx.AsyncClient, user_email: str, kind: str
) -> None:
    """A cross-site text/plain or multipart form must not sign anyone in (login CSRF)."""
    credentials = {"email": user_email, "password": PASSWORD}
    if kind == "text/plain":
        body: dict[str, Any] = {
            "content": f'{{"email": "{user_email}", "password": "{PASSWORD}"}}'.encode(),
            "headers": {"Content-Type": "text/plain"},
        }
    else:
        body = {"files": {k: (None, v) for k, v in credentials.items()}}
    response = await bare_client.post("/auth/login", **body)
    assert response.status_code == 415
    assert not bare_client.cookies.jar


# --- CSRF-09: no state change on a safe method --------------------------------------------------


def routes_of(app: FastAPI) -> list[tuple[str, frozenset[str]]]:
    """Every route of ``app`` (through included routers): its path and its methods."""
    found: list[tuple[str, frozenset[str]]] = []

    def walk(routes: Any) -> None:
        for route in routes:
            if hasattr(route, "effective_route_contexts"):  # FastAPI's included routers
                walk(route.effective_route_contexts())
            elif hasattr(route, "routes") and not getattr(route, "methods", None):
                walk(route.routes)  # a plain Router or Mount with routes of its own
            elif getattr(route, "methods", None):
                found.append((route.path, frozenset(route.methods)))

    walk(app.routes)
    return found


def route_table(app: FastAPI) -> dict[str, set[str]]:
    """Each path with every method some route answers on it."""
    table: dict[str, set[str]] = {}
    for path, methods in routes_of(app):
        table.setdefault(path, set()).update(methods)
    return table


UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
MUTATING_API = {
    "/auth/register",
    "/auth/login",
    "/auth/logout",
    "/auth/logout-all",
    "/auth/reauth",
    "/auth/password",
    "/auth/sessions/{handle}",
    "/auth/token",
    "/auth/revoke",
}


@pytest.mark.parametrize("mode", MODES)
def test_CSRF_09_route_audit_no_route_mixes_safe_and_unsafe_methods(vr: Velvetrope) -> None:
    """A handler that answers GET and POST alike would let a link do what a form does."""
    app = create_app(velvetrope=vr)
    table = route_table(app)
    documented = {
        (path, method.upper())
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    walked = {(path, method) for path, methods in table.items() for method in methods}
    assert documented <= walked, "the audit must see every route"
    for path, methods in routes_of(app):
        if methods & UNSAFE_METHODS:
            assert not methods & {"GET", "HEAD"}, f"{path} answers {sorted(methods)}"
    for path in MUTATING_API | ({"/auth/refresh"} if vr.browser.jwt_cookies else set()):
        assert table[path], path
        assert table[path] <= UNSAFE_METHODS, f"{path} answers {sorted(table[path])}"


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_09_every_safe_route_changes_nothing_when_called_cross_site(
    browser: Browser, vr: Velvetrope, service: AuthService
) -> None:
    """Call every GET route (and HEAD, OPTIONS) as a signed-in browser from another site:
    the devices, the sign-in and the password stay as they were."""
    table = route_table(create_app(velvetrope=vr))
    safe = sorted(p for p, m in table.items() if m & {"GET", "HEAD"} and "{" not in p)
    assert {"/auth/me", "/auth/csrf", "/auth/sessions"} <= set(safe)
    before = await browser.state(credentials_only=True)
    for path in safe:
        for method in ("GET", "HEAD", "OPTIONS"):
            response = await browser.http.request(
                method,
                path,
                headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
            )
            assert response.status_code < 500, (method, path, response.text)
    assert await browser.state(credentials_only=True) == before
    assert await password_unchanged(service, browser.email)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["logout", "logout-all", "reauth", "password", "end-session"])
@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE"])
async def test_CSRF_09_mutating_endpoints_do_nothing_on_safe_methods(
    browser: Browser, name: str, method: str
) -> None:
    before = await browser.state()
    path = UNSAFE[name][1].format(other=browser.other)
    response = await browser.http.request(method, path, headers=browser.headers())
    assert response.status_code == 405
    assert await browser.state() == before


# --- CSRF-10: Vary --------------------------------------------------------------------------


def vary_of(response: httpx.Response) -> set[str]:
    return {
        part.strip().lower()
        for line in response.headers.get_list("vary")
        for part in line.split(",")
    }


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


# --- CSRF-11: CORS ------------------------------------------------------------------------------


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type, x-csrf-token",
    }


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",
        "https://app.example.com.evil.example",
        "https://evilapp.example.com",
        "http://app.example.com",
        "https://app.example.com:8443",
        ORIGIN,  # same-origin needs no CORS; it is not in the allowlist either
    ],
)
async def test_CSRF_11_a_preflight_from_an_unlisted_origin_gets_no_allow_origin(
    cors_browser: Browser, origin: str
) -> None:
    response = await cors_browser.http.options("/auth/logout", headers=preflight(origin))
    assert "access-control-allow-origin" not in response.headers
    assert response.status_code >= 400
    simple = await cors_browser.http.get("/auth/me", headers={"Origin": origin})
    assert "access-control-allow-origin" not in simple.headers


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("origin", [TRUSTED, "https://admin.example.com"])
async def test_CSRF_11_a_listed_origin_gets_exactly_itself_and_credentials(
    cors_browser: Browser, origin: str
) -> None:
    response = await cors_browser.http.options("/auth/logout", headers=preflight(origin))
    assert response.status_code == 200
    assert response.headers.get_list("access-control-allow-origin") == [origin]
    assert response.headers["access-control-allow-credentials"] == "true"
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert "x-csrf-token" in allowed
    assert "origin" in vary_of(response)
    simple = await cors_browser.http.get("/auth/me", headers={"Origin": origin})
    assert simple.status_code == 200
    assert simple.headers.get_list("access-control-allow-origin") == [origin]
    assert simple.headers["access-control-allow-credentials"] == "true"
    assert "origin" in vary_of(simple)


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_11_without_an_allowlist_there_is_no_cors_at_all(browser: Browser) -> None:
    for origin in (TRUSTED, "https://evil.example", "null"):
        response = await browser.http.options("/auth/logout", headers=preflight(origin))
        assert not any(h.startswith("access-control-") for h in response.headers)
        simple = await browser.http.get("/auth/me", headers={"Origin": origin})
        assert not any(h.startswith("access-control-") for h in simple.headers)


REFUSED_CORS = [
    "*",
    "https://*.example.com",
    "*.example.com",
    "https://app.example.*",
    r"https://.*\.example\.com",
    r"^https://app\.example\.com$",
    "/app\\.example\\.com/",
    "example.com",
    "app.example.com:443",
    "https://",
    "https://example.com/path",
    "https://example.com?query=value",
    "https://example.com#fragment",
    "https://user@example.com",
    "https://user:pass@example.com",
    "null",
    "ftp://example.com",
    "https://ok.example.com, *",
]


@pytest.mark.parametrize("entry", REFUSED_CORS)
def test_CSRF_11_wildcards_patterns_and_non_origins_are_refused_at_settings_load(
    entry: str,
) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(database_url="memory://", public_origin=ORIGIN, cors_origins=entry, _env_file=None)
    sentence = describe_validation_error(caught.value)
    assert "VELVETROPE_CORS_ORIGINS" in sentence
    assert "never *" in sentence


def test_CSRF_11_the_allowlist_comes_from_the_environment_too(
    no_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VELVETROPE_PUBLIC_ORIGIN", ORIGIN)
    monkeypatch.setenv("VELVETROPE_DATABASE_URL", "memory://")
    monkeypatch.setenv("VELVETROPE_CORS_ORIGINS", "*")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)
    monkeypatch.setenv("VELVETROPE_CORS_ORIGINS", f" {TRUSTED} ,HTTPS://Admin.Example.com/ ,")
    assert Settings(_env_file=None).cors_allowlist() == (TRUSTED, "https://admin.example.com")


def test_CSRF_11_default_ports_are_normalised_away() -> None:
    settings = Settings(
        database_url="memory://",
        public_origin="https://testserver:443",
        cors_origins="https://app.example.com:443",
        _env_file=None,
    )
    assert settings.cors_allowlist() == (TRUSTED,)
    assert settings.origin == ORIGIN


def test_CSRF_11_an_invalid_host_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(
            database_url="memory://",
            public_origin=ORIGIN,
            cors_origins="https://ex ample.com",
            _env_file=None,
        )


# --- CSRF-12: the pre-session cookie ------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_12_the_pre_session_cookie_attributes(bare_client: httpx.AsyncClient) -> None:
    response = await bare_client.get("/auth/csrf", headers=SAME_ORIGIN)
    assert response.status_code == 200
    headers = response.headers.get_list("set-cookie")
    assert len(headers) == 1
    cookie = parse_set_cookie(headers[0])
    assert cookie.name == PRESESSION
    assert cookie.has("secure")
    assert cookie.has("httponly")  # the token travels in the body; no script reads the cookie
    assert cookie.attributes["samesite"] == "strict"
    assert cookie.attributes["path"] == "/"
    assert not cookie.has("domain")
    assert 0 < cookie.max_age <= 12 * 3600
    assert len(cookie.value) == 43
    token = response.json()["csrf_token"]
    assert cookie.value not in token  # the token is a MAC over the nonce, not the nonce
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_12_the_pre_session_cookie_is_kept_and_a_bad_one_replaced(
    bare_client: httpx.AsyncClient,
) -> None:
    first = await bare_client.get("/auth/csrf", headers=SAME_ORIGIN)
    again = await bare_client.get("/auth/csrf", headers=SAME_ORIGIN)
    assert "set-cookie" not in again.headers
    assert again.json()["csrf_token"] != first.json()["csrf_token"]
    async with other_client(bare_client) as other:
        for bad in ("short", "x" * 44, ""):
            replaced = await other.get("/auth/csrf", headers={"Cookie": f"{PRESESSION}={bad}"})
            assert parse_set_cookie(replaced.headers["set-cookie"]).value != bad


# --- login CSRF: form sign-in and sign-up need the pre-session pair ---------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", ["/auth/login", "/auth/register"])
@pytest.mark.parametrize(
    "missing", ["cookie and token", "token", "cookie", "token of another cookie", "forged token"]
)
async def test_login_csrf_form_posts_need_the_pre_session_cookie_and_its_token(
    bare_client: httpx.AsyncClient, user_email: str, path: str, missing: str
) -> None:
    email = user_email if path == "/auth/login" else "new@example.com"
    form = {"email": email, "password": PASSWORD}
    mine = await bare_client.get("/auth/csrf", headers=SAME_ORIGIN)
    nonce = mine.cookies[PRESESSION]
    async with other_client(bare_client) as attacker:
        theirs = (await attacker.get("/auth/csrf")).json()["csrf_token"]
    cookie = f"{PRESESSION}={nonce}"
    if missing == "cookie and token":
        headers, field = {}, None
    elif missing == "token":
        headers, field = {"Cookie": cookie}, None
    elif missing == "cookie":
        headers, field = {"Cookie": ""}, mine.json()["csrf_token"]
    elif missing == "token of another cookie":
        headers, field = {"Cookie": cookie}, theirs
    else:
        headers, field = {"Cookie": cookie}, FORGED
    if field is not None:
        form["csrf_token"] = field
    async with other_client(bare_client) as victim:
        response = await victim.post(path, data=form, headers={**SAME_ORIGIN, **headers})
        assert_csrf_refusal(response, mentions=PRESESSION)
        assert not victim.cookies.jar


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("where", ["field", "header"])
async def test_login_csrf_with_get_csrf_first_a_form_sign_in_works(
    bare_client: httpx.AsyncClient, user_email: str, where: str
) -> None:
    token = (await bare_client.get("/auth/csrf", headers=SAME_ORIGIN)).json()["csrf_token"]
    form = {"email": user_email, "password": PASSWORD}
    headers = dict(SAME_ORIGIN)
    if where == "field":
        form["csrf_token"] = token
    else:
        headers["X-CSRF-Token"] = token
    response = await bare_client.post("/auth/login", data=form, headers=headers)
    assert response.status_code == 200, response.text
    assert {SESSION, ACCESS} & set(response.cookies)
    assert (await bare_client.get("/auth/me")).status_code == 200
    signup = {"email": "new@example.com", "password": PASSWORD, "csrf_token": token}
    async with other_client(bare_client) as other:
        token = (await other.get("/auth/csrf", headers=SAME_ORIGIN)).json()["csrf_token"]
        signup["csrf_token"] = token
        created = await other.post("/auth/register", data=signup, headers=SAME_ORIGIN)
        assert created.status_code == 201, created.text


@pytest.mark.parametrize("mode", MODES)
async def test_login_csrf_a_valid_pair_from_another_site_is_still_refused(
    bare_client: httpx.AsyncClient, user_email: str
) -> None:
    token = (await bare_client.get("/auth/csrf", headers=SAME_ORIGIN)).json()["csrf_token"]
    form = {"email": user_email, "password": PASSWORD, "csrf_token": token}
    response = await bare_client.post(
        "/auth/login", data=form, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert_csrf_refusal(response)
    assert PRESESSION in {c.name for c in bare_client.cookies.jar}
    assert {SESSION, ACCESS}.isdisjoint(c.name for c in bare_client.cookies.jar)


@pytest.mark.parametrize("mode", MODES)
async def test_login_csrf_json_sign_in_needs_no_token(
    bare_client: httpx.AsyncClient, user_email: str
) -> None:
    """A cross-site page cannot send JSON without a preflight; the origin check still runs."""
    response = await bare_client.post(
        "/auth/login", json={"email": user_email, "password": PASSWORD}, headers=SAME_ORIGIN
    )
    assert response.status_code == 200


# --- Bearer requests are exempt ---------------------------------------------------------------


@pytest.fixture
async def bearer(bare_client: httpx.AsyncClient, user_email: str) -> str:
    async with other_client(bare_client) as api:
        response = await api.post(
            "/auth/token",
            data={"grant_type": "password", "username": user_email, "password": PASSWORD},
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}


@pytest.mark.parametrize("mode", MODES)
async def test_bearer_requests_need_no_token_even_cross_site(browser: Browser, bearer: str) -> None:
    auth = {"Authorization": f"Bearer {bearer}"}
    me = await browser.http.get("/auth/me", headers={**auth, **CROSS_SITE})
    assert me.status_code == 200
    family = me.json()["session"]["id"]
    before = await browser.state()
    response = await browser.http.post("/auth/logout", headers={**auth, **CROSS_SITE})
    assert response.status_code == 204
    assert "set-cookie" not in response.headers
    assert (await browser.http.get("/auth/me", headers=auth)).status_code == 401
    after = await browser.state()
    assert after.devices == tuple(d for d in before.devices if d != family)  # only the bearer's
    assert dataclasses.replace(after, devices=before.devices) == before


@pytest.mark.parametrize("mode", MODES)
async def test_get_csrf_with_a_bearer_token_says_none_is_needed(
    bare_client: httpx.AsyncClient, bearer: str
) -> None:
    response = await bare_client.get("/auth/csrf", headers={"Authorization": f"Bearer {bearer}"})
    assert response.status_code == 422
    assert "need no CSRF token" in response.json()["detail"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "authorization", ["Bearer not.a.token", "Bearer x", "Basic YW5uOnB3", "Bearer"]
)
async def test_a_bad_or_other_authorization_never_borrows_the_bearer_exemption(
    browser: Browser, authorization: str
) -> None:
    """The cookie is not used when a Bearer header is there, and any other scheme is no
    exemption: either way a cross-site request changes nothing."""
    before = await browser.state()
    for name in ("logout", "logout-all", "end-session"):
        response = await send(browser, name, {**CROSS_SITE, "Authorization": authorization})
        assert response.status_code in {401, 403}, response.text
        assert "set-cookie" not in response.headers
    assert await browser.state() == before


# --- the form field, through Depends(vr.principal) in an app of one's own --------------------


@pytest.fixture
async def own_app(vr: Velvetrope) -> AsyncIterator[httpx.AsyncClient]:
    """An app that includes ``vr.router`` and protects a form route with
    ``Depends(vr.principal)``; no OriginCheck middleware, so the route-level checks are
    all there is."""
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(vr.router)

    @app.post("/notes")
    # Not Annotated[...]: with postponed annotations FastAPI resolves names in the
    # module's globals, and ``vr`` is local to this fixture.
    async def notes(request: Request, who: Principal = Depends(vr.principal)) -> JSONResponse:  # noqa: B008
        form = parse_qsl((await request.body()).decode())  # python-multipart is not a dependency
        return JSONResponse({"user": who.user_id, "fields": sorted(form)})

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        yield http


@pytest.fixture
async def own_browser(
    own_app: httpx.AsyncClient, service: AuthService, user_email: str, mode: Mode
) -> Browser:
    handle, alive = await second_device(service, user_email, mode)
    return Browser(own_app, await sign_in(own_app, user_email), user_email, handle, alive)


@pytest.mark.parametrize("mode", MODES)
async def test_a_form_field_token_passes_and_the_route_gets_the_whole_form(
    own_browser: Browser,
) -> None:
    form = {"title": "groceries", "body": "milk & eggs = 2 €", "csrf_token": own_browser.token}
    response = await own_browser.http.post("/notes", data=form, headers=SAME_ORIGIN)
    assert response.status_code == 200, response.text
    assert response.json()["fields"] == sorted([list(item) for item in form.items()])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("form", "headers"),
    [
        pytest.param({"title": "x"}, SAME_ORIGIN, id="no token"),
        pytest.param({"title": "x", "csrf_token": FORGED}, SAME_ORIGIN, id="forged field"),
        pytest.param("mine", CROSS_SITE, id="cross-site with the token"),
        pytest.param("mine", {"Referer": "https://evil.example/"}, id="foreign referer"),
        pytest.param("mine", {}, id="no origin at all"),
        pytest.param("twice", SAME_ORIGIN, id="field twice"),
        pytest.param("bad header", SAME_ORIGIN, id="bad header beats a good field"),
    ],
)
async def test_a_form_without_a_good_token_or_from_elsewhere_is_refused(
    own_browser: Browser, form: dict[str, str] | str, headers: dict[str, str]
) -> None:
    before = await own_browser.state()
    content = None
    data: dict[str, str] | None = None
    request_headers = dict(headers)
    if form == "mine":
        data = {"title": "x", "csrf_token": own_browser.token}
    elif form == "twice":
        content = f"csrf_token={own_browser.token}&csrf_token={FORGED}".encode()
        request_headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif form == "bad header":
        data = {"title": "x", "csrf_token": own_browser.token}
        request_headers["X-CSRF-Token"] = FORGED
    else:
        assert isinstance(form, dict)
        data = form
    response = await own_browser.http.post(
        "/notes", data=data, content=content, headers=request_headers
    )
    assert_csrf_refusal(response)
    assert await own_browser.state() == before


@pytest.mark.parametrize("mode", MODES)
async def test_the_router_refuses_cross_site_requests_without_the_middleware(
    own_browser: Browser,
) -> None:
    """``vr.router`` carries its own origin check (no OriginCheck in this app)."""
    before = await own_browser.state()
    for name in ("logout", "logout-all"):
        response = await send(own_browser, name, {**CROSS_SITE, "X-CSRF-Token": own_browser.token})
        assert_csrf_refusal(response)
    assert await own_browser.state() == before


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
