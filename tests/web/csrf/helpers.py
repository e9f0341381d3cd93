"""The CSRF tests' browser, built by hand, and the unsafe endpoints a cookie authenticates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest

from tests.support.services import ORIGIN, PASSWORD
from velvetrope import AuthService
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


# --- responses ------------------------------------------------------------------------------


def vary_of(response: httpx.Response) -> set[str]:
    """Every name the response's ``Vary`` headers list, lower-cased."""
    return {
        part.strip().lower()
        for line in response.headers.get_list("vary")
        for part in line.split(",")
    }
