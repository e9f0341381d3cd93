"""Fetch Metadata / Origin checks on unsafe requests (CSRF-05, CSRF-06, CSRF-07, CSRF-10).

:class:`OriginPolicy` on raw scopes (Go's ``net/http`` CrossOriginProtection table,
ported), then the :class:`OriginCheck` middleware: which methods it checks, which
cookies make a header-less request suspicious, the Bearer exemption, ``Vary``.
End-to-end cases over the whole app are in ``tests/web/csrf``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from tests.support.services import ORIGIN, PASSWORD
from velvetrope import Velvetrope
from velvetrope.web.csrf import OriginPolicy
from velvetrope.web.middleware import OriginCheck

TRUSTED = "https://trusted.example"
COOKIES = ["__Host-velvetrope-session", "__Host-velvetrope-csrf"]


def scope_with(headers: dict[str, str] | list[tuple[str, str]], method: str = "POST") -> Scope:
    items = headers.items() if isinstance(headers, dict) else headers
    return {
        "type": "http",
        "method": method,
        "path": "/",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in items],
    }


# --- OriginPolicy, unit level ------------------------------------------------------------

# src/net/http/csrf_test.go, TestCrossOriginProtectionSecFetchSite: (headers, allowed)
# for a request without our cookie; "example.com" is our configured origin here.
GO_SEC_FETCH_SITE = {
    "same-origin allowed": ({"Sec-Fetch-Site": "same-origin"}, True),
    "none allowed": ({"Sec-Fetch-Site": "none"}, True),
    "cross-site blocked": ({"Sec-Fetch-Site": "cross-site"}, False),
    "same-site blocked": ({"Sec-Fetch-Site": "same-site"}, False),
    "no header with no origin": ({}, True),
    "no header with matching origin": ({"Origin": ORIGIN}, True),
    "no header with mismatched origin": ({"Origin": "https://attacker.example"}, False),
    "no header with null origin": ({"Origin": "null"}, False),
}
# TestCrossOriginProtectionTrustedOriginBypass
GO_TRUSTED = {
    "trusted origin without sec-fetch-site": ({"Origin": TRUSTED}, True),
    "trusted origin with cross-site": ({"Origin": TRUSTED, "Sec-Fetch-Site": "cross-site"}, True),
    "untrusted origin without sec-fetch-site": ({"Origin": "https://attacker.example"}, False),
    "untrusted origin with cross-site": (
        {"Origin": "https://attacker.example", "Sec-Fetch-Site": "cross-site"},
        False,
    ),
}


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [*GO_SEC_FETCH_SITE.values(), *GO_TRUSTED.values()],
    ids=[*GO_SEC_FETCH_SITE, *GO_TRUSTED],
)
def test_CSRF_05_CSRF_06_go_cross_origin_protection_table(
    headers: dict[str, str], allowed: bool
) -> None:
    policy = OriginPolicy(ORIGIN, [TRUSTED])
    reason = policy.refusal(scope_with(headers), carries_cookie=False)
    assert (reason is None) == allowed, reason
    if reason is not None:
        assert ORIGIN in reason


def test_CSRF_06_no_browser_header_is_refused_only_with_a_cookie() -> None:
    policy = OriginPolicy(ORIGIN)
    assert policy.refusal(scope_with({}), carries_cookie=False) is None
    reason = policy.refusal(scope_with({}), carries_cookie=True)
    assert reason is not None
    assert "Origin" in reason
    assert "Authorization: Bearer" in reason


@pytest.mark.parametrize(
    "origin",
    [
        "https://testserver.evil.example",
        "https://eviltestserver",
        "https://testserver.",
        "https://testserver:443",
        "https://testserver/",
        "HTTPS://TESTSERVER",
        "http://testserver",
        " https://testserver",
        "https://testserver\x00",
        "https://xn--testserver",
        "https://testserver, https://testserver",
    ],
)
def test_CSRF_06_only_the_exact_serialised_origin_passes(origin: str) -> None:
    """Browsers send Origin serialised (lower case, no default port, no slash): anything
    else is not our page."""
    policy = OriginPolicy(ORIGIN)
    assert policy.refusal(scope_with({"Origin": origin}), carries_cookie=True) is not None
    assert policy.refusal(scope_with({"Origin": ORIGIN}), carries_cookie=True) is None


@pytest.mark.parametrize(
    ("referer", "allowed"),
    [
        (f"{ORIGIN}/", True),
        (f"{ORIGIN}/a/b?c=d#e", True),
        ("https://TestServer/page", True),
        ("https://testserver.evil.example/", False),
        ("https://testserver@evil.example/", False),
        ("https://evil.example@testserver/", False),  # userinfo is not part of an origin
        ("https://evil.example/https://testserver/", False),
        ("//testserver/page", False),
        ("/relative/page", False),
        ("https://[::1/", False),  # urlsplit raises: unreadable
        ("", False),
    ],
)
def test_CSRF_06_referer_fallback(referer: str, allowed: bool) -> None:
    policy = OriginPolicy(ORIGIN)
    reason = policy.refusal(scope_with({"Referer": referer}), carries_cookie=True)
    assert (reason is None) == allowed, reason


def test_CSRF_06_a_foreign_origin_is_shown_cut_short() -> None:
    reason = OriginPolicy(ORIGIN).refusal(
        scope_with({"Origin": "https://" + "a" * 10_000}), carries_cookie=False
    )
    assert reason is not None
    assert len(reason) < 250


def test_CSRF_05_the_configured_origin_is_never_merely_trusted() -> None:
    """Listing our own origin among the CORS origins must not make a request that the
    browser marks cross-site acceptable just because it claims our Origin."""
    policy = OriginPolicy(ORIGIN, [ORIGIN, TRUSTED])
    headers = {"Sec-Fetch-Site": "cross-site", "Origin": ORIGIN}
    assert policy.refusal(scope_with(headers), carries_cookie=True) is not None


@pytest.mark.parametrize(
    "lines",
    [
        [("Sec-Fetch-Site", "cross-site"), ("Sec-Fetch-Site", "same-origin")],
        [("Sec-Fetch-Site", "same-origin"), ("Sec-Fetch-Site", "same-origin")],
        [("Origin", "https://attacker.example"), ("Origin", ORIGIN)],
        [("Origin", ORIGIN), ("Origin", "https://attacker.example")],
        [("Referer", "https://attacker.example/"), ("Referer", f"{ORIGIN}/")],
    ],
)
def test_a_repeated_browser_header_is_refused_whatever_its_lines_say(
    lines: list[tuple[str, str]],
) -> None:
    reason = OriginPolicy(ORIGIN).refusal(scope_with(lines), carries_cookie=False)
    assert reason is not None
    assert "repeats" in reason


# --- OriginCheck, the middleware ----------------------------------------------------------


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
async def checked(vr: Velvetrope) -> AsyncIterator[httpx.AsyncClient]:
    app = OriginCheck(ok, context=vr.context)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN) as http:
        yield http


@pytest.mark.parametrize(
    ("cookie", "carries"),
    [
        ("__Host-velvetrope-session=abc", True),
        ("a=1; __Host-velvetrope-session=abc; b=2", True),
        ("a=1;__Host-velvetrope-csrf=abc", True),
        ("x__Host-velvetrope-session=abc", False),
        ("__Host-velvetrope-sessionx=abc", False),
        ("__host-velvetrope-session=abc", False),  # cookie names are case-sensitive
        ("velvetrope-session=abc", False),
        ("a=__Host-velvetrope-session=abc", False),
    ],
)
async def test_CSRF_06_which_cookies_make_a_header_less_request_suspicious(
    checked: httpx.AsyncClient, cookie: str, carries: bool
) -> None:
    response = await checked.post("/", headers={"Cookie": cookie})
    assert response.status_code == (403 if carries else 200)


async def test_CSRF_06_split_cookie_headers_are_all_read(checked: httpx.AsyncClient) -> None:
    """HTTP/2 may send each cookie in a Cookie line of its own."""
    response = await checked.post(
        "/", headers=[("Cookie", "a=1"), ("Cookie", "__Host-velvetrope-session=abc")]
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        ("Bearer abc", 200),
        ("bearer abc", 200),
        ("BEARER abc", 200),
        ("Bearerabc", 403),
        ("Basic YTpi", 403),
        ("Bearer", 403),
    ],
)
async def test_only_a_bearer_authorization_is_exempt(
    checked: httpx.AsyncClient, authorization: str, status: int
) -> None:
    response = await checked.post(
        "/", headers={"Authorization": authorization, "Sec-Fetch-Site": "cross-site"}
    )
    assert response.status_code == status


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE"])
async def test_CSRF_09_safe_methods_pass_and_do_not_vary(
    checked: httpx.AsyncClient, method: str
) -> None:
    response = await checked.request(method, "/", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 200
    assert "vary" not in response.headers


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "PROPFIND"])
async def test_CSRF_10_every_unsafe_response_varies(
    checked: httpx.AsyncClient, method: str
) -> None:
    refused = await checked.request(method, "/", headers={"Sec-Fetch-Site": "cross-site"})
    passed = await checked.request(method, "/", headers={"Sec-Fetch-Site": "same-origin"})
    assert refused.status_code == 403
    assert refused.json()["error"] == "csrf_failed"
    assert passed.status_code == 200
    for response in (refused, passed):
        assert response.headers["vary"] == "Sec-Fetch-Site, Origin"


# --- over the whole app ------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "https://testserver.evil.example"},
        {"Origin": "http://testserver"},  # scheme differs
        {"Origin": "https://testserver:8443"},  # port differs
    ],
)
async def test_CSRF_05_CSRF_06_cross_origin_unsafe_requests_are_refused(
    client: httpx.AsyncClient, user_email: str, headers: dict[str, str]
) -> None:
    response = await client.post(
        "/auth/login", json={"email": user_email, "password": PASSWORD}, headers=headers
    )
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed"
    assert "set-cookie" not in response.headers  # no login CSRF
    assert response.headers["vary"] == "Sec-Fetch-Site, Origin"


@pytest.mark.parametrize(
    "headers",
    [
        {},  # not a browser: no cookie, no browser header
        {"Sec-Fetch-Site": "same-origin", "Origin": ORIGIN},
        {"Sec-Fetch-Site": "none"},
        {"Origin": ORIGIN},
        {"Referer": f"{ORIGIN}/signin"},
    ],
)
async def test_CSRF_05_same_origin_and_non_browser_requests_pass(
    bare_client: httpx.AsyncClient, user_email: str, headers: dict[str, str]
) -> None:
    response = await bare_client.post(
        "/auth/login", json={"email": user_email, "password": PASSWORD}, headers=headers
    )
    assert response.status_code == 200
    assert "Origin" in response.headers["vary"]


async def test_CSRF_07_a_spoofed_host_does_not_make_an_origin_acceptable(
    client: httpx.AsyncClient, user_email: str
) -> None:
    response = await client.post(
        "/auth/login",
        json={"email": user_email, "password": PASSWORD},
        headers={
            "Host": "evil.example",
            "X-Forwarded-Host": "evil.example",
            "Origin": "https://evil.example",
        },
    )
    assert response.status_code == 403


async def test_CSRF_09_safe_methods_are_never_refused(signed_in: httpx.AsyncClient) -> None:
    response = await signed_in.get("/auth/me", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 200


async def test_cross_site_logout_all_changes_nothing(signed_in: httpx.AsyncClient) -> None:
    response = await signed_in.post(
        "/auth/logout-all", headers={"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}
    )
    assert response.status_code == 403
    assert (await signed_in.get("/auth/me")).status_code == 200
