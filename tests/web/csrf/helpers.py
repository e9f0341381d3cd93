"""The CSRF tests' browser, built by hand, and the unsafe endpoints a cookie authenticates."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest
from fastapi import FastAPI

from tests.support.services import ORIGIN, PASSWORD, app_settings
from velvetrope import AuthService, MemoryStores, PasswordHasher, Velvetrope, create_app
from velvetrope.errors import AuthError

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
CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}


# --- a browser, built by hand -----------------------------------------------------------------


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


def other_client(http: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client on the same app with an empty cookie jar."""
    return httpx.AsyncClient(transport=http._transport, base_url=str(http.base_url))


def browser_cookie(http: httpx.AsyncClient, name: str) -> str:
    value = next((c.value for c in http.cookies.jar if c.name == name), None)
    assert value, f"no {name} cookie"
    return value


def cookie_header(http: httpx.AsyncClient) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies.jar)


def assert_route_refusal(response: httpx.Response, path: str, *, mentions: str) -> None:
    """The refusal of a request to ``path``: a page for people says so in a 403 page, the
    API answers with :func:`assert_csrf_refusal`."""
    if is_page(path):
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("text/html")
        assert "did not come from this site" in response.text
    else:
        assert_csrf_refusal(response, mentions=mentions)


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


# --- the unsafe endpoints a cookie authenticates ----------------------------------------------

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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


def unsafe_routes(app: FastAPI) -> list[tuple[str, str]]:
    """``(method, path)`` of every route of ``app`` that answers an unsafe method."""
    return sorted(
        {(method, path) for path, methods in routes_of(app) for method in methods & UNSAFE_METHODS}
    )


@functools.cache
def server_app(mode: Mode) -> FastAPI:
    """The auth server's app in browser-credential ``mode`` (built, never started)."""
    service = AuthService(MemoryStores(), hasher=PasswordHasher("test-only"))
    return create_app(
        velvetrope=Velvetrope(app_settings(browser_credentials=mode), service=service)
    )


def is_page(path: str) -> bool:
    """Whether ``path`` is one of the pages for people (HTML), not the JSON API."""
    return not path.startswith(("/auth/", "/.well-known/"))


TOKEN_FREE: dict[tuple[str, str], str] = {
    ("POST", "/auth/login"): (
        "sign-in: there is no session to bind a token to yet; JSON needs a CORS preflight "
        "and form sign-ins need the pre-session pair (test_login_csrf.py)"
    ),
    ("POST", "/auth/register"): "sign-up: as sign-in, no session yet",
    ("POST", "/auth/token"): (
        "the OAuth token endpoint: the credential (password or refresh token) is in the "
        "body, never a cookie"
    ),
    ("POST", "/auth/revoke"): (
        "RFC 7009 revocation: the token to revoke is in the body; it ends only what the "
        "caller already holds"
    ),
    ("POST", "/auth/dbsc/register"): (
        "DBSC registration: the browser itself sends it (no page script can add a header); "
        "the proof is a JWT signed by the device key over a one-time challenge the server "
        "bound to this session, which a cross-site page never sees (DBSC-02, test_dbsc_http.py); "
        "cross-site requests are still refused by the origin check"
    ),
    ("POST", "/auth/dbsc/refresh"): (
        "DBSC refresh: as registration, sent by the browser with a proof over a one-time "
        "challenge; without a valid proof it only answers a new challenge or "
        "continue=false and changes nothing (DBSC-03..05)"
    ),
    ("POST", "/auth/password/forgot"): (
        "forgotten password: no session yet; it only mails the address's owner a link, and "
        "answers the same for every address; form posts need the pre-session pair "
        "(test_account_lifecycle.py, RESET-09)"
    ),
    ("POST", "/auth/password/reset"): (
        "reset by link: the single-use secret from the mail is the proof and no session is "
        "involved (nor made: it signs nobody in); form posts need the pre-session pair"
    ),
    ("POST", "/auth/email/verify"): (
        "verification by link: the single-use secret from the mail is the proof; it can "
        "only verify the address the link was sent to; form posts need the pre-session pair"
    ),
}
"""The unsafe routes a same-origin request may call without a CSRF token, and why. Every
other unsafe route of the app must refuse a cookie without its token; every unsafe route
at all must refuse a cross-site request."""

SERVER_ROUTES = [
    pytest.param(mode, method, path, id=f"{mode}-{method} {path}")
    for mode in MODES
    for method, path in unsafe_routes(server_app(mode))
]
"""``(mode, method, path)`` for every unsafe route of the server app, walked from the app
itself: a route added to ``create_app`` is in here without anyone listing it."""

COOKIE_ROUTES = [p for p in SERVER_ROUTES if tuple(p.values[1:]) not in TOKEN_FREE]
""":data:`SERVER_ROUTES` but the :data:`TOKEN_FREE` ones."""

UNSAFE_ONLY_PATHS = [
    pytest.param(mode, path, id=f"{mode}-{path}")
    for mode in MODES
    for path, methods in sorted(route_table(server_app(mode)).items())
    if methods & UNSAFE_METHODS and not methods & {"GET", "HEAD"}
]
"""``(mode, path)`` for every path of the server app that only changes things: no page
or resource answers a safe method there."""

UNSAFE: dict[str, tuple[str, str, dict[str, str] | None]] = {
    "logout": ("POST", "/auth/logout", None),
    "logout-all": ("POST", "/auth/logout-all", None),
    "reauth": ("POST", "/auth/reauth", {"password": PASSWORD}),
    "password": (
        "POST",
        "/auth/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    ),
    "end-session": ("DELETE", "/auth/sessions/{handle}", None),
    "refresh": ("POST", "/auth/refresh", None),
    "resend-verification": ("POST", "/auth/email/verify/resend", None),
}
"""The unsafe API endpoints a cookie authenticates, by name, with a body that makes the
call succeed when the CSRF checks pass (every such route of the app must be listed)."""


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
        fill(path, browser),
        json=json if json is not None else body,
        headers=dict(headers),
        params=params,
    )


def fill(path: str, browser: Browser) -> str:
    """``path`` with every ``{parameter}`` set to the browser's other device (for
    ``/auth/sessions/{handle}``, the worst case: ending another device)."""
    return re.sub(r"\{[^}]+\}", lambda _: browser.other, path)


async def send_to_route(
    browser: Browser, method: str, path: str, headers: Mapping[str, str]
) -> httpx.Response:
    """Call the route ``method path`` with ``headers``, and with its body in
    :data:`UNSAFE` if it has one there (else none)."""
    bodies = {(m, p): body for m, p, body in UNSAFE.values()}
    return await browser.http.request(
        method, fill(path, browser), json=bodies.get((method, path)), headers=dict(headers)
    )


async def password_unchanged(service: AuthService, email: str) -> bool:
    try:
        await service.users.authenticate(email, PASSWORD)
    except AuthError:
        return False
    return True


# --- responses ------------------------------------------------------------------------------


def vary_of(response: httpx.Response) -> set[str]:
    """Every name the response's ``Vary`` headers list, lower-cased."""
    return {
        part.strip().lower()
        for line in response.headers.get_list("vary")
        for part in line.split(",")
    }
