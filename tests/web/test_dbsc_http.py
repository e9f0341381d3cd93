"""Device-bound sessions (DBSC) over HTTP, as Chromium 156 speaks it, with a software key.

A client here does what the browser does: signs in, reads the registration offer,
registers a key with a ``dbsc+jwt``, then renews its short-lived bound cookie through
the 403-challenge-proof dance. The long-lived session cookie alone is refused once the
session is bound, on every node of a shared store.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cookies import SetCookie
from tests.support.nodes import SHARED_STORES, two_nodes
from tests.support.proofs import ProofKey, forge, jws
from tests.support.services import ORIGIN, PASSWORD, app_settings, asgi_client, started_service
from velvetrope import AuthService, FrozenClock, PasswordHasher, Velvetrope, create_app
from velvetrope.core.binding.dbsc import SessionBindingPolicy
from velvetrope.stores import MemoryStores

EMAIL = "ann@example.com"
SESSION = "__Host-velvetrope-session"
BOUND = "__Host-velvetrope-bound"
OFFER = re.compile(r'\(ES256 RS256\);path="(/auth/dbsc/register)";challenge="([A-Za-z0-9_-]+)"')


@dataclass
class Browser:
    """What a DBSC browser keeps: its cookies, its key and the session's id."""

    key: ProofKey
    session: str = ""
    bound: str = ""
    session_id: str = ""
    challenge: str = ""

    def cookies(self, *, bound: bool = True) -> dict[str, str]:
        jar = f"{SESSION}={self.session}"
        if bound and self.bound:
            jar += f"; {BOUND}={self.bound}"
        return {"Cookie": jar, "Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"}

    def keep(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            cookie = SetCookie.parse(header)
            if cookie.name == SESSION:
                self.session = cookie.value
            elif cookie.name == BOUND:
                self.bound = cookie.value


async def sign_in(http: httpx.AsyncClient, browser: Browser) -> httpx.Response:
    response = await http.post(
        "/auth/login", json={"email": EMAIL, "password": PASSWORD}, headers={"Origin": ORIGIN}
    )
    assert response.status_code == 200, response.text
    http.cookies.clear()  # each Browser keeps its own cookies
    browser.keep(response)
    offer = OFFER.fullmatch(response.headers.get("secure-session-registration", ""))
    assert offer is not None, response.headers
    browser.challenge = offer.group(2)
    return response


async def register(http: httpx.AsyncClient, browser: Browser, **claims: Any) -> httpx.Response:
    proof = browser.key.sign({"jti": browser.challenge, **claims}, typ="dbsc+jwt")
    response = await http.post(
        "/auth/dbsc/register", headers={**browser.cookies(), "Secure-Session-Response": proof}
    )
    http.cookies.clear()
    browser.keep(response)
    if response.status_code == 200:
        browser.session_id = response.json()["session_identifier"]
    return response


async def refresh(http: httpx.AsyncClient, browser: Browser) -> httpx.Response:
    """Chromium's refresh: ask, get a 403 with a challenge, answer it."""
    headers = {**browser.cookies(bound=False), "Sec-Secure-Session-Id": browser.session_id}
    asked = await http.post("/auth/dbsc/refresh", headers=headers)
    assert asked.status_code == 403, asked.text
    match = re.fullmatch(
        r'"([A-Za-z0-9_-]+)";id="([^"]+)"', asked.headers["secure-session-challenge"]
    )
    assert match is not None
    assert match.group(2) == browser.session_id
    proof = browser.key.sign_bare({"jti": match.group(1)})
    answered = await http.post(
        "/auth/dbsc/refresh", headers={**headers, "Secure-Session-Response": proof}
    )
    http.cookies.clear()
    browser.keep(answered)
    return answered


@pytest.fixture
async def service(clock: FrozenClock, hasher: PasswordHasher) -> AsyncIterator[AuthService]:
    started = await started_service(MemoryStores(), clock=clock, hasher=hasher)
    await started.register(EMAIL, PASSWORD)
    yield started
    await started.aclose()


@pytest.fixture
async def http(service: AuthService) -> AsyncIterator[httpx.AsyncClient]:
    vr = Velvetrope(app_settings(), service=service)
    async with asgi_client(create_app(velvetrope=vr)) as client:
        yield client


async def test_DBSC_01_sign_in_offers_registration_with_a_single_use_challenge(
    http: httpx.AsyncClient,
) -> None:
    first, second = Browser(ProofKey()), Browser(ProofKey())
    await sign_in(http, first)
    await sign_in(http, second)
    assert first.challenge != second.challenge


async def test_DBSC_02_registration_binds_the_session_to_the_key(
    http: httpx.AsyncClient, service: AuthService
) -> None:
    browser = Browser(ProofKey())
    await sign_in(http, browser)
    registered = await register(http, browser)
    assert registered.status_code == 200, registered.text
    [set_cookie] = [
        SetCookie.parse(h) for h in registered.headers.get_list("set-cookie") if BOUND in h
    ]
    assert set_cookie.max_age == 600
    [session] = await service.sessions.list((await service.find_user(EMAIL)).id)
    assert session.device_key is not None
    assert browser.key.jkt in session.device_key


def bound_cookie_attributes(response: httpx.Response) -> dict[str, str]:
    """The bound cookie's ``Set-Cookie`` attributes in ``response``, Max-Age aside."""
    [cookie] = [SetCookie.parse(h) for h in response.headers.get_list("set-cookie") if BOUND in h]
    return {k: v.lower() for k, v in cookie.attributes.items() if k != "max-age"}


def config_attributes(config: dict[str, Any]) -> dict[str, str]:
    """The attributes the session config's one credential names, parsed the same way."""
    [credential] = config["credentials"]
    assert (credential["type"], credential["name"]) == ("cookie", BOUND)
    parts = (p.strip().partition("=") for p in credential["attributes"].split(";"))
    return {name.lower(): value.lower() for name, _, value in parts}


async def test_DBSC_03_the_session_config_names_the_key_and_the_bound_cookie_exactly(
    http: httpx.AsyncClient,
) -> None:
    """Registration and every refresh answer the same config: the key's thumbprint as
    the id (kept across re-authentication), host-only scope, and the bound cookie's
    attributes exactly as its Set-Cookie gives them (else Chromium refreshes forever)."""
    browser = Browser(ProofKey())
    login = await sign_in(http, browser)
    registered = await register(http, browser)
    assert registered.status_code == 200, registered.text
    config = registered.json()
    assert config["session_identifier"] == browser.key.jkt
    assert config["refresh_url"] == "/auth/dbsc/refresh"
    assert config["scope"] == {
        "include_site": False,
        "scope_specification": [{"type": "exclude", "domain": "*", "path": "/static"}],
    }
    expected = bound_cookie_attributes(registered)
    assert {"path", "secure", "httponly", "samesite"} <= set(expected)
    assert config_attributes(config) == expected
    headers = {**browser.cookies(), "X-CSRF-Token": login.json()["csrf_token"]}
    renewed = await http.post("/auth/reauth", json={"password": PASSWORD}, headers=headers)
    assert renewed.status_code == 200, renewed.text
    http.cookies.clear()
    browser.keep(renewed)
    refreshed = await refresh(http, browser)
    assert refreshed.status_code == 200, refreshed.text
    again = refreshed.json()
    assert again["session_identifier"] == browser.key.jkt  # stable across re-authentication
    assert (again["refresh_url"], again["scope"]) == (config["refresh_url"], config["scope"])
    assert config_attributes(again) == bound_cookie_attributes(refreshed) == expected


async def test_DBSC_02_registration_needs_this_sessions_challenge_once(
    http: httpx.AsyncClient,
) -> None:
    first, second = Browser(ProofKey()), Browser(ProofKey())
    await sign_in(http, first)
    await sign_in(http, second)
    first.challenge, second.challenge = second.challenge, first.challenge
    swapped = await register(http, first)
    assert swapped.status_code == 400
    assert swapped.json()["error"] == "invalid_device_proof"
    assert (await register(http, second)).status_code == 400  # the swap spent it
    third = Browser(ProofKey())
    await sign_in(http, third)
    assert (await register(http, third)).status_code == 200
    thief = Browser(ProofKey(), session=third.session, challenge=third.challenge)
    rebind = await register(http, thief)  # a bound session never takes another key
    assert rebind.status_code == 400


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"alg": "HS256"}, "alg"),
        ({"typ": "jwt"}, "typ"),
    ],
)
async def test_DBSC_02_a_registration_proof_is_checked_through_the_codec(
    http: httpx.AsyncClient, header: dict[str, str], reason: str
) -> None:
    browser = Browser(ProofKey())
    await sign_in(http, browser)
    full = {"alg": "ES256", "typ": "dbsc+jwt", "jwk": browser.key.public, **header}
    bad = (
        forge(full, {"jti": browser.challenge}, b"k" * 32)
        if reason == "alg"
        else jws(full, {"jti": browser.challenge}, b"\x01" * 64)
    )
    response = await http.post(
        "/auth/dbsc/register", headers={**browser.cookies(), "Secure-Session-Response": bad}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_device_proof"


async def test_DBSC_04_a_bound_session_needs_its_bound_cookie(
    http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    browser = Browser(ProofKey())
    await sign_in(http, browser)
    assert (await http.get("/auth/me", headers=browser.cookies())).status_code == 200
    await register(http, browser)
    assert (await http.get("/auth/me", headers=browser.cookies())).status_code == 200
    # A request the browser sent while registering carries no bound cookie yet.
    early = await http.get("/auth/me", headers=browser.cookies(bound=False))
    assert early.status_code == 200
    clock.advance(timedelta(seconds=10))  # past the grace after sign-in
    alone = await http.get("/auth/me", headers=browser.cookies(bound=False))
    assert alone.status_code == 401
    assert alone.json()["error"] == "device_binding_required"
    forged = Browser(browser.key, browser.session, bound=browser.bound[:-2] + "AA")
    assert (await http.get("/auth/me", headers=forged.cookies())).status_code == 401
    clock.advance(timedelta(minutes=10) - timedelta(seconds=8))  # + 2 s of slack
    expired = await http.get("/auth/me", headers=browser.cookies())
    assert expired.status_code == 401
    assert expired.json()["error"] == "device_binding_required"
    assert (await refresh(http, browser)).status_code == 200
    assert (await http.get("/auth/me", headers=browser.cookies())).status_code == 200


async def test_DBSC_05_refresh_challenges_are_single_use(http: httpx.AsyncClient) -> None:
    browser = Browser(ProofKey())
    await sign_in(http, browser)
    await register(http, browser)
    headers = {**browser.cookies(bound=False), "Sec-Secure-Session-Id": browser.session_id}
    asked = await http.post("/auth/dbsc/refresh", headers=headers)
    challenge = asked.headers["secure-session-challenge"].split('"')[1]
    proof = browser.key.sign_bare({"jti": challenge})
    answer = {**headers, "Secure-Session-Response": proof}
    assert (await http.post("/auth/dbsc/refresh", headers=answer)).status_code == 200
    again = await http.post("/auth/dbsc/refresh", headers=answer)  # Chromium's cached proof
    assert again.status_code == 403
    assert again.headers["secure-session-challenge"].split('"')[1] != challenge


async def test_DBSC_05_challenges_expire(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    browser = Browser(ProofKey())
    await sign_in(http, browser)
    await register(http, browser)
    headers = {**browser.cookies(bound=False), "Sec-Secure-Session-Id": browser.session_id}
    asked = await http.post("/auth/dbsc/refresh", headers=headers)
    proof = browser.key.sign_bare({"jti": asked.headers["secure-session-challenge"].split('"')[1]})
    clock.advance(timedelta(seconds=61))
    late = await http.post(
        "/auth/dbsc/refresh", headers={**headers, "Secure-Session-Response": proof}
    )
    assert late.status_code == 403


async def test_DBSC_06_a_proof_by_another_key_is_refused_and_logged(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    browser = Browser(ProofKey())
    await sign_in(http, browser)
    await register(http, browser)
    thief = Browser(ProofKey(), session=browser.session, session_id=browser.session_id)
    headers = {**thief.cookies(), "Sec-Secure-Session-Id": thief.session_id}
    asked = await http.post("/auth/dbsc/refresh", headers=headers)
    proof = thief.key.sign_bare({"jti": asked.headers["secure-session-challenge"].split('"')[1]})
    with caplog.at_level(logging.INFO, "velvetrope.events"):
        refused = await http.post(
            "/auth/dbsc/refresh", headers={**headers, "Secure-Session-Response": proof}
        )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_device_proof"
    assert "event=session_binding_failed" in caplog.text
    assert "step=refresh" in caplog.text


async def test_DBSC_07_an_ended_session_tells_the_browser_to_stop(
    http: httpx.AsyncClient,
) -> None:
    browser = Browser(ProofKey())
    login = await sign_in(http, browser)
    await register(http, browser)
    csrf = login.json()["csrf_token"]
    out = await http.post("/auth/logout", headers={**browser.cookies(), "X-CSRF-Token": csrf})
    assert out.status_code == 204
    headers = {**browser.cookies(), "Sec-Secure-Session-Id": browser.session_id}
    ended = await http.post("/auth/dbsc/refresh", headers=headers)
    assert ended.status_code == 200
    assert ended.json() == {"session_identifier": browser.session_id, "continue": False}
    [cleared] = [SetCookie.parse(h) for h in ended.headers.get_list("set-cookie")]
    assert cleared.name == BOUND
    assert cleared.max_age == 0


async def test_DBSC_08_require_refuses_an_unbound_session_after_the_grace(
    clock: FrozenClock, hasher: PasswordHasher
) -> None:
    policy = SessionBindingPolicy(mode="require", grace=timedelta(seconds=10))
    service = await started_service(
        MemoryStores(), clock=clock, hasher=hasher, binding_policy=policy
    )
    await service.register(EMAIL, PASSWORD)
    vr = Velvetrope(app_settings(session_binding="require"), service=service)
    async with asgi_client(create_app(velvetrope=vr)) as http:
        unbound, bound = Browser(ProofKey()), Browser(ProofKey())
        await sign_in(http, unbound)
        await sign_in(http, bound)
        assert (await http.get("/auth/me", headers=unbound.cookies())).status_code == 200
        await register(http, bound)
        clock.advance(timedelta(seconds=10))
        refused = await http.get("/auth/me", headers=unbound.cookies())
        assert refused.status_code == 401
        assert refused.json()["error"] == "device_binding_required"
        assert (await http.get("/auth/me", headers=bound.cookies())).status_code == 200
    await service.aclose()


async def test_DBSC_09_the_device_list_shows_which_sessions_are_bound(
    http: httpx.AsyncClient,
) -> None:
    bound, plain = Browser(ProofKey()), Browser(ProofKey())
    await sign_in(http, bound)
    await sign_in(http, plain)
    await register(http, bound)
    devices = (await http.get("/auth/sessions", headers=bound.cookies())).json()
    assert sorted((d["current"], d["bound"]) for d in devices) == [(False, False), (True, True)]
    page = await http.get("/account", headers=bound.cookies())
    assert page.text.count("Device-bound</span>") == 1
    assert "bound to a key this browser holds" in page.text


async def test_DBSC_01_off_offers_nothing(clock: FrozenClock, hasher: PasswordHasher) -> None:
    policy = SessionBindingPolicy(mode="off")
    service = await started_service(
        MemoryStores(), clock=clock, hasher=hasher, binding_policy=policy
    )
    await service.register(EMAIL, PASSWORD)
    vr = Velvetrope(app_settings(session_binding="off"), service=service)
    async with asgi_client(create_app(velvetrope=vr)) as http:
        login = await http.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
        assert "secure-session-registration" not in login.headers
        missing = await http.post("/auth/dbsc/register", headers={"Origin": ORIGIN})
        assert missing.status_code == 404
    await service.aclose()


@pytest.mark.parametrize("kind", SHARED_STORES)
async def test_DBSC_05_every_node_agrees_on_bindings_and_challenges(
    kind: str, tmp_path: Path, clock: FrozenClock, hasher: PasswordHasher
) -> None:
    async with two_nodes(kind, tmp_path, clock=clock, hasher=hasher) as (a, b):
        await a.service.register(EMAIL, PASSWORD)
        browser = Browser(ProofKey())
        await sign_in(a.http, browser)
        assert (await register(b.http, browser)).status_code == 200
        clock.advance(timedelta(seconds=10))
        alone = await a.http.get("/auth/me", headers=browser.cookies(bound=False))
        assert alone.status_code == 401
        headers = {**browser.cookies(bound=False), "Sec-Secure-Session-Id": browser.session_id}
        asked = await a.http.post("/auth/dbsc/refresh", headers=headers)
        challenge = asked.headers["secure-session-challenge"].split('"')[1]
        answer = {**headers, "Secure-Session-Response": browser.key.sign_bare({"jti": challenge})}
        answered = await b.http.post("/auth/dbsc/refresh", headers=answer)
        assert answered.status_code == 200
        browser.keep(answered)
        assert (await a.http.post("/auth/dbsc/refresh", headers=answer)).status_code == 403
        assert (await a.http.get("/auth/me", headers=browser.cookies())).status_code == 200


async def test_DBSC_04_re_authentication_keeps_the_device_binding(
    http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    browser = Browser(ProofKey())
    login = await sign_in(http, browser)
    await register(http, browser)
    old = browser.session
    headers = {**browser.cookies(), "X-CSRF-Token": login.json()["csrf_token"]}
    renewed = await http.post("/auth/reauth", json={"password": PASSWORD}, headers=headers)
    assert renewed.status_code == 200, renewed.text
    http.cookies.clear()
    browser.keep(renewed)
    assert browser.session != old
    clock.advance(timedelta(seconds=10))
    assert (await http.get("/auth/me", headers=browser.cookies())).status_code == 200
    alone = await http.get("/auth/me", headers=browser.cookies(bound=False))
    assert alone.json()["error"] == "device_binding_required"
    assert (await refresh(http, browser)).status_code == 200


@pytest.mark.parametrize(
    "response",
    ["", "garbage", "a.b.c", "e30.e30.", "x" * 100_000, '"' + "a.b.c" + '"'],
)
async def test_DBSC_02_bad_input_gets_a_clear_4xx(http: httpx.AsyncClient, response: str) -> None:
    browser = Browser(ProofKey())
    await sign_in(http, browser)
    headers = {**browser.cookies(), "Secure-Session-Response": response}
    registered = await http.post("/auth/dbsc/register", headers=headers)
    assert registered.status_code == 400, registered.text
    assert registered.json()["error"] == "invalid_device_proof"
    await register(http, browser)
    refreshed = await http.post(
        "/auth/dbsc/refresh",
        headers={**headers, "Sec-Secure-Session-Id": browser.session_id},
    )
    assert refreshed.status_code in {400, 403}, refreshed.text
    http.cookies.clear()
    nobody = await http.post(
        "/auth/dbsc/register", headers={"Origin": ORIGIN, "Secure-Session-Response": response}
    )
    assert nobody.status_code == 401  # no session to bind
