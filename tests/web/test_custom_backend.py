"""A fourth way in, from the outside: an API key in ``X-API-Key`` (issue 9).

Written as a user of the library would write it, with the public extension points only
(``AuthBackend``, ``Transport``, ``Strategy``, ``Principal``, ``Device``,
``Velvetrope.add_backend``): a transport that reads the header and is not ambient, and a
strategy that keeps its keys in a dict. Nothing in ``src/`` knows about it, yet it
authenticates, is exempt from CSRF (a browser never sends the header on its own), shows
in the device list, can be signed out and ended like any device, and gets its own 401
challenge; a route of one's own behind ``AuthMiddleware`` or ``Depends(vr.principal)``
accepts it too.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.responses import Response
from starlette.types import Scope

from tests.support.cookies import parse_set_cookie
from tests.support.services import ORIGIN, PASSWORD, app_settings, asgi_client
from velvetrope import (
    AuthBackend,
    AuthMiddleware,
    AuthService,
    Clock,
    CookieTransport,
    Device,
    InvalidToken,
    Presented,
    Principal,
    Strategy,
    Transport,
    Velvetrope,
    create_app,
)

HEADER = "X-API-Key"
CHALLENGE = 'ApiKey realm="velvetrope"'
BEARER_CHALLENGE = 'Bearer realm="velvetrope"'
CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Origin": ORIGIN}
_KEY = re.compile(r"[A-Za-z0-9_-]{16,128}")


# --- the way in, as a user of the library writes it -------------------------------------------


class ApiKeyTransport(Transport):
    """``X-API-Key: <key>``. Browsers never attach it on their own: not ambient."""

    name = HEADER
    ambient = False
    challenge: str | None = CHALLENGE

    def read_scope(self, scope: Scope) -> Presented | None:
        """The key in the request, ``None`` without the header.

        Raises:
            InvalidToken: The header is there but cannot be a key.
        """
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                key: str = value.decode("latin-1")
                if _KEY.fullmatch(key) is None:
                    raise InvalidToken("malformed API key")
                return Presented(key)
        return None

    def write(self, response: Response, value: str, *, max_age: timedelta) -> None:
        """Keys are handed out once, out of band; the server never sets one.

        Raises:
            TypeError: Always.
        """
        raise TypeError("API keys are not set by the server")

    def clear(self, response: Response) -> None:
        """Nothing to clear: the client holds the key; the strategy revokes it."""


@dataclass(frozen=True)
class ApiKey:
    """One key, stored by its SHA-256 digest."""

    user_id: str
    handle: str
    label: str
    created_at: datetime


class ApiKeyStrategy(Strategy):
    """API keys in a dict: digest of the key -> owner, device handle and label."""

    def __init__(self, now: Clock) -> None:
        self._now = now
        self._keys: dict[str, ApiKey] = {}

    @staticmethod
    def _digest(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def issue(self, user_id: str, label: str) -> tuple[str, str]:
        """A new key for ``user_id``; return (key, its device handle)."""
        key, handle = secrets.token_urlsafe(32), secrets.token_urlsafe(16)
        self._keys[self._digest(key)] = ApiKey(user_id, handle, label, self._now())
        return key, handle

    async def authenticate(self, credential: Presented, *, method: str) -> Principal:
        found = self._keys.get(self._digest(credential.value))
        if found is None:
            raise InvalidToken("unknown API key")
        return Principal(user_id=found.user_id, method=method, handle=found.handle)

    async def destroy(self, principal: Principal) -> None:
        await self.end_device(principal.user_id, principal.handle)

    async def devices(self, user_id: str) -> Sequence[Device]:
        return [
            Device(
                handle=k.handle,
                kind="api-key",
                created_at=k.created_at,
                last_seen_at=k.created_at,
                user_agent=k.label,
            )
            for k in self._keys.values()
            if k.user_id == user_id
        ]

    async def end_device(self, user_id: str, handle: str) -> bool:
        for digest, k in list(self._keys.items()):
            if k.user_id == user_id and k.handle == handle:
                del self._keys[digest]
                return True
        return False


# --- an app with the fourth way in ------------------------------------------------------------


@pytest.fixture
def api_keys(vr: Velvetrope, clock: Clock) -> ApiKeyStrategy:
    """The strategy, added to ``vr`` as the backend ``api-key`` (after the built-in ones)."""
    strategy = ApiKeyStrategy(now=clock)
    vr.add_backend(AuthBackend("api-key", ApiKeyTransport(), strategy))
    return strategy


@pytest.fixture
def app(vr: Velvetrope, api_keys: ApiKeyStrategy) -> FastAPI:
    """The server app with two routes of one's own: ``GET /orders`` behind
    ``Depends(vr.principal)``, and ``POST /api/notes`` behind ``AuthMiddleware`` only."""
    app = create_app(velvetrope=vr)

    @app.get("/orders")
    async def orders(who: Principal = Depends(vr.principal)) -> dict[str, str]:  # noqa: B008
        return {"user": who.user_id, "method": who.method, "device": who.handle}

    @app.post("/api/notes")
    async def notes() -> dict[str, bool]:
        return {"saved": True}

    app.add_middleware(AuthMiddleware, velvetrope=vr, protect=["/api"])
    return app


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app`` with a cookie jar: a browser, once :func:`browser_sign_in` ran."""
    async with asgi_client(app) as client:
        yield client


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Another client of ``app``, which never signs in with a cookie: the API-key client."""
    async with asgi_client(app) as client:
        yield client


@dataclass(frozen=True)
class Ann:
    user_id: str
    key: str
    handle: str

    @property
    def headers(self) -> dict[str, str]:
        return {HEADER: self.key}


@pytest.fixture
async def ann(service: AuthService, api_keys: ApiKeyStrategy) -> Ann:
    user = await service.register("ann@example.com", PASSWORD)
    key, handle = api_keys.issue(user.id, "build server")
    return Ann(user.id, key, handle)


async def browser_sign_in(http: httpx.AsyncClient) -> str:
    """Sign ``http`` in with the session cookie; return the CSRF token."""
    return await browser_sign_in_with(http, PASSWORD)


async def browser_sign_in_with(http: httpx.AsyncClient, password: str) -> str:
    """:func:`browser_sign_in` with ``password``."""
    response = await http.post(
        "/auth/login", json={"email": "ann@example.com", "password": password}, headers=SAME_ORIGIN
    )
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


def challenges(response: httpx.Response) -> str:
    return ", ".join(response.headers.get_list("www-authenticate"))


# --- it authenticates -------------------------------------------------------------------------


async def test_an_api_key_authenticates_as_its_own_way_in(api: httpx.AsyncClient, ann: Ann) -> None:
    me = await api.get("/auth/me", headers=ann.headers)
    assert me.status_code == 200, me.text
    assert me.json()["id"] == ann.user_id
    assert me.json()["email"] == "ann@example.com"
    assert me.json()["session"]["id"] == ann.handle
    orders = await api.get("/orders", headers=ann.headers)
    assert orders.json() == {"user": ann.user_id, "method": "api-key", "device": ann.handle}


async def test_a_route_behind_auth_middleware_accepts_the_key(
    api: httpx.AsyncClient, ann: Ann
) -> None:
    assert (await api.post("/api/notes", headers=ann.headers)).json() == {"saved": True}
    assert (await api.post("/api/notes")).status_code == 401
    assert (await api.post("/api/notes", headers={HEADER: "A" * 43})).status_code == 401


# --- it is exempt from CSRF, being no cookie -------------------------------------------------


async def test_an_api_key_needs_no_csrf_token_even_cross_site_where_a_cookie_is_refused(
    http: httpx.AsyncClient, api: httpx.AsyncClient, ann: Ann
) -> None:
    await browser_sign_in(http)  # the same user, also signed in with a cookie
    with_cookie = await http.post("/auth/logout", headers=CROSS_SITE)
    assert with_cookie.status_code == 403
    assert with_cookie.json()["error"] == "csrf_failed"
    with_cookie = await http.post("/api/notes", headers=CROSS_SITE)
    assert with_cookie.status_code == 403
    assert (await http.get("/auth/me")).status_code == 200  # the cookie still works
    noted = await api.post("/api/notes", headers={**ann.headers, **CROSS_SITE})
    assert noted.json() == {"saved": True}
    signed_out = await api.post("/auth/logout", headers={**ann.headers, **CROSS_SITE})
    assert signed_out.status_code == 204, signed_out.text
    assert "set-cookie" not in signed_out.headers
    assert (await api.get("/auth/me", headers=ann.headers)).status_code == 401
    assert (await http.get("/auth/me")).status_code == 200  # only the key's device ended


async def test_an_api_key_ends_its_own_device_cross_site_without_a_token(
    api: httpx.AsyncClient, ann: Ann
) -> None:
    response = await api.delete(
        f"/auth/sessions/{ann.handle}", headers={**ann.headers, **CROSS_SITE}
    )
    assert response.status_code == 204, response.text
    assert (await api.get("/auth/me", headers=ann.headers)).status_code == 401


async def test_attack_a_key_beside_a_cookie_launders_no_cross_site_request(
    http: httpx.AsyncClient, api: httpx.AsyncClient, ann: Ann
) -> None:
    """The cookie's backend is asked first, so a request carrying the cookie is the
    cookie's, whatever key rides along: it gets the CSRF checks."""
    await browser_sign_in(http)
    for key in (ann.key, "A" * 43, "not a key!"):
        for path in ("/auth/logout", "/auth/logout-all"):
            response = await http.post(path, headers={**CROSS_SITE, HEADER: key})
            assert response.status_code == 403, (key, path, response.text)
            assert response.json()["error"] == "csrf_failed"
    assert (await http.get("/auth/me")).status_code == 200
    assert (await api.get("/auth/me", headers=ann.headers)).status_code == 200


# --- it is a device ---------------------------------------------------------------------------


async def test_the_api_key_is_in_the_device_list_and_can_be_ended_from_elsewhere(
    http: httpx.AsyncClient, api: httpx.AsyncClient, ann: Ann
) -> None:
    listed = await api.get("/auth/sessions", headers=ann.headers)
    assert listed.status_code == 200, listed.text
    [key_device] = listed.json()
    assert key_device["id"] == ann.handle
    assert key_device["current"] is True
    assert key_device["user_agent"] == "build server"
    token = await browser_sign_in(http)
    devices = (await http.get("/auth/sessions")).json()
    assert {(d["id"] == ann.handle, d["current"]) for d in devices} == {
        (True, False),
        (False, True),
    }
    ended = await http.delete(
        f"/auth/sessions/{ann.handle}", headers={**SAME_ORIGIN, "X-CSRF-Token": token}
    )
    assert ended.status_code == 204, ended.text
    assert (await api.get("/auth/me", headers=ann.headers)).status_code == 401


async def test_a_password_change_ends_the_api_keys_but_the_callers_own(
    http: httpx.AsyncClient, api: httpx.AsyncClient, ann: Ann, api_keys: ApiKeyStrategy
) -> None:
    """A changed password ends every other device, the application's own ways in included
    (as sign-out everywhere does): from the browser every key goes; through a key, the
    calling key stays and the others go."""
    second, _ = api_keys.issue(ann.user_id, "laptop")
    change = {"current_password": PASSWORD, "new_password": "a whole new passphrase 2"}
    changed = await api.post("/auth/password", json=change, headers=ann.headers)
    assert changed.status_code == 204, changed.text
    assert (await api.get("/auth/me", headers=ann.headers)).status_code == 200
    assert (await api.get("/auth/me", headers={HEADER: second})).status_code == 401
    token = await browser_sign_in_with(http, "a whole new passphrase 2")
    back = {"current_password": "a whole new passphrase 2", "new_password": PASSWORD}
    headers = {**SAME_ORIGIN, "X-CSRF-Token": token}
    changed = await http.post("/auth/password", json=back, headers=headers)
    assert changed.status_code == 204, changed.text
    assert (await http.get("/auth/me")).status_code == 200
    assert (await api.get("/auth/me", headers=ann.headers)).status_code == 401
    assert await api_keys.devices(ann.user_id) == []


async def test_a_password_change_whose_session_ends_meanwhile_still_ends_the_api_keys(
    http: httpx.AsyncClient,
    api: httpx.AsyncClient,
    ann: Ann,
    service: AuthService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The session is signed out (another tab) after the password changed and before its
    ID is rotated: the change stands, the request gets 401, and no device survives it."""
    token = await browser_sign_in(http)
    sessions = service.sessions
    rotate = sessions.reauthenticated

    async def signed_out_meanwhile(secret: str, session: Any, **kwargs: Any) -> Any:
        await sessions.end_by_handle(session.user_id, session.handle)  # the other tab
        return await rotate(secret, session, **kwargs)

    monkeypatch.setattr(sessions, "reauthenticated", signed_out_meanwhile)
    change = {"current_password": PASSWORD, "new_password": "a whole new passphrase 2"}
    changed = await http.post(
        "/auth/password", json=change, headers={**SAME_ORIGIN, "X-CSRF-Token": token}
    )
    assert changed.status_code == 401, changed.text
    assert (await api.get("/auth/me", headers=ann.headers)).status_code == 401
    await browser_sign_in_with(http, "a whole new passphrase 2")  # the change stands


# --- it gets the right challenge ----------------------------------------------------------------


async def answers_without(api: httpx.AsyncClient, headers: dict[str, str]) -> list[httpx.Response]:
    """The refusals of ``/auth/me``, a ``Depends(vr.principal)`` route and an
    ``AuthMiddleware`` route for a request with ``headers``."""
    return [
        await api.get("/auth/me", headers=headers),
        await api.get("/orders", headers=headers),
        await api.post("/api/notes", headers=headers),
    ]


BAD_KEYS = ["A" * 43, "x" * 16, "not a key!", ""]
"""Unknown to the strategy (the first two) or malformed at the transport (the others)."""


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_a_bad_api_key_is_refused_as_an_invalid_token(
    api: httpx.AsyncClient, ann: Ann, key: str
) -> None:
    for response in await answers_without(api, {HEADER: key}):
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_token"


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_a_bad_api_key_gets_the_api_key_challenge(
    api: httpx.AsyncClient, ann: Ann, key: str
) -> None:
    """``invalid_token`` under the key's own scheme, never the bearer one."""
    for response in await answers_without(api, {HEADER: key}):
        assert challenges(response) == f'{CHALLENGE}, error="invalid_token"'


async def test_no_credential_at_all_is_refused(api: httpx.AsyncClient) -> None:
    for response in await answers_without(api, {}):
        assert response.status_code == 401
        assert response.json()["error"] == "not_authenticated"


async def test_no_credential_at_all_gets_every_non_ambient_challenge(
    api: httpx.AsyncClient,
) -> None:
    for response in await answers_without(api, {}):
        assert challenges(response) == f"{BEARER_CHALLENGE}, {CHALLENGE}"


# --- a bad way in is refused, and changes nothing ---------------------------------------------


class _NoChallenge:
    """A transport that forgot ``challenge`` and ``clear``."""

    name = "X-Half"
    ambient = False

    def read_scope(self, scope: Scope) -> Presented | None:
        return None

    def write(self, response: Response, value: str, *, max_age: timedelta) -> None:
        raise TypeError


BAD_BACKENDS: dict[str, tuple[str, object, object, str]] = {
    "transport is no transport": ("y", object(), None, "read_scope, write, clear"),
    "transport lacks challenge and clear": ("y", _NoChallenge(), None, "has no challenge"),
    "strategy lacks methods": ("y", ApiKeyTransport(), object(), "authenticate, destroy"),
    "empty name": ("", ApiKeyTransport(), None, "non-empty name"),
    "blank name": ("  ", ApiKeyTransport(), None, "non-empty name"),
    "duplicate name": ("api-key", ApiKeyTransport(), None, "'api-key' is there already"),
    "a built-in's name": ("session", ApiKeyTransport(), None, "'session' is there already"),
}


@pytest.mark.parametrize("case", BAD_BACKENDS.values(), ids=list(BAD_BACKENDS))
async def test_a_bad_backend_is_refused_by_name_and_the_ways_in_still_work(
    vr: Velvetrope,
    http: httpx.AsyncClient,
    api: httpx.AsyncClient,
    ann: Ann,
    case: tuple[str, object, object, str],
) -> None:
    name, transport, strategy, says = case
    before = vr.context.authenticator.backends
    good_strategy = before[0].strategy
    bad = AuthBackend(name, transport, strategy or good_strategy)  # type: ignore[arg-type]
    with pytest.raises((TypeError, ValueError), match=re.escape(says)) as refused:
        vr.add_backend(bad)
    if name.strip():
        assert repr(name) in str(refused.value)  # the message names the backend
    assert vr.context.authenticator.backends == before
    assert (await api.get("/auth/me", headers=ann.headers)).status_code == 200
    assert (await api.get("/auth/me")).status_code == 401
    await browser_sign_in(http)
    assert (await http.get("/auth/me")).status_code == 200
    assert challenges(await api.get("/orders")) == f"{BEARER_CHALLENGE}, {CHALLENGE}"


async def test_a_backend_inserted_before_an_unknown_name_is_refused(
    vr: Velvetrope, api_keys: ApiKeyStrategy
) -> None:
    before = vr.context.authenticator.backends
    with pytest.raises(ValueError, match="no backend called 'nope'"):
        vr.add_backend(AuthBackend("other", ApiKeyTransport(), api_keys), before="nope")
    assert vr.context.authenticator.backends == before


# --- an ambient way in of one's own: a key in a cookie ------------------------------------------

KEY_COOKIE = "__Host-velvetrope-key"


@pytest.fixture
def cookie_keys(vr: Velvetrope, clock: Clock) -> ApiKeyStrategy:
    """The same kind of keys, carried in a cookie of their own: the backend ``cookie-key``,
    ambient, with a description for the account page."""
    strategy = ApiKeyStrategy(now=clock)
    transport = CookieTransport(base_name="velvetrope-key")
    assert transport.name == KEY_COOKIE
    described = "a key of one's own, in a cookie"
    vr.add_backend(AuthBackend("cookie-key", transport, strategy, description=described))
    return strategy


@pytest.fixture
async def kim(
    service: AuthService, cookie_keys: ApiKeyStrategy, http: httpx.AsyncClient
) -> httpx.AsyncClient:
    """``http``, holding a cookie key of a new user (and no other credential)."""
    user = await service.register("kim@example.com", PASSWORD)
    key, _ = cookie_keys.issue(user.id, "kim's browser")
    http.cookies.set(KEY_COOKIE, key)
    me = await http.get("/auth/me")
    assert me.status_code == 200, me.text
    return http


def cleared(response: httpx.Response) -> set[str]:
    """The names of the cookies ``response`` expires."""
    cookies = [parse_set_cookie(h) for h in response.headers.get_list("set-cookie")]
    return {c.name for c in cookies if c.max_age == 0}


async def test_signing_out_clears_the_cookie_of_an_ambient_way_in_of_ones_own(
    kim: httpx.AsyncClient,
) -> None:
    token = (await kim.get("/auth/csrf")).json()["csrf_token"]
    signed_out = await kim.post("/auth/logout", headers={**SAME_ORIGIN, "X-CSRF-Token": token})
    assert signed_out.status_code == 204, signed_out.text
    assert KEY_COOKIE in cleared(signed_out)
    assert (await kim.get("/auth/me")).status_code == 401


async def test_the_account_pages_sign_out_clears_the_cookie_of_a_way_in_of_ones_own(
    kim: httpx.AsyncClient,
) -> None:
    token = (await kim.get("/auth/csrf")).json()["csrf_token"]
    signed_out = await kim.post("/account/signout", data={"csrf_token": token}, headers=SAME_ORIGIN)
    assert signed_out.status_code == 303, signed_out.text
    assert KEY_COOKIE in cleared(signed_out)
    assert (await kim.get("/auth/me")).status_code == 401


async def test_a_cookie_of_ones_own_is_still_refused_cross_site_and_kept(
    kim: httpx.AsyncClient,
) -> None:
    """The cookie is ambient: a cross-site sign-out is refused and clears nothing."""
    refused = await kim.post("/auth/logout", headers=CROSS_SITE)
    assert refused.status_code == 403
    assert cleared(refused) == set()
    assert (await kim.get("/auth/me")).status_code == 200


# --- the account page says how one signed in ----------------------------------------------------


async def test_the_account_page_describes_a_way_in_of_ones_own(kim: httpx.AsyncClient) -> None:
    page = await kim.get("/account")
    assert page.status_code == 200, page.text
    assert "a key of one&#39;s own, in a cookie" in page.text
    assert "server-side session" not in page.text


async def test_the_account_page_names_a_way_in_without_a_description(
    api: httpx.AsyncClient, ann: Ann
) -> None:
    page = await api.get("/account", headers=ann.headers)
    assert page.status_code == 200, page.text
    assert "<dt>Signed in with</dt>\n    <dd>api-key</dd>" in page.text


async def test_the_built_in_ways_in_describe_themselves(
    vr: Velvetrope, service: AuthService
) -> None:
    described = {b.name: b.description for b in vr.context.authenticator.backends}
    assert described == {
        "bearer": "an access token, in the Authorization header",
        "dpop": "an access token bound to a key this device holds (DPoP)",
        "session": "a server-side session, in an HttpOnly cookie",
    }
    jwt = Velvetrope(app_settings(browser_credentials="jwt-cookie"), service=service)
    [cookie] = [b for b in jwt.context.authenticator.backends if b.name == "jwt-cookie"]
    assert cookie.description == "an access token and a refresh token, in HttpOnly cookies"


async def test_the_account_page_expires_a_dead_cookie_of_ones_own(kim: httpx.AsyncClient) -> None:
    kim.cookies.set(KEY_COOKIE, "A" * 43)  # well-formed, but no key of the strategy's
    page = await kim.get("/account")
    assert page.status_code == 303, page.text
    assert "expired" in page.headers["location"]
    assert KEY_COOKIE in cleared(page)
