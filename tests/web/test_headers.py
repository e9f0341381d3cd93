"""Security headers (OPS-02, COOK-09), error shapes, the challenge, /docs and the OpenAPI document.

"Every response" means every one: successes, the router's 404/405, validation errors,
and the refusals the request-limit middleware sends before any route runs (413, 431).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.support.services import PASSWORD
from velvetrope import AuthService, Settings, Velvetrope, create_app

COOKIE = "__Host-velvetrope-session"
# The scheme is Session at first and Bearer once access tokens exist; either way a
# 401 names the realm (RFC 9110 section 11.6.1).
CHALLENGE_RE = re.compile(r'(Session|Bearer) realm="velvetrope"(, error="[a-z_]+")?')
ONE_YEAR = 365 * 24 * 3600

Probe = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


async def _oversize_stream() -> AsyncIterator[bytes]:
    for _ in range(80):
        yield b" " * 1024


PROBES: dict[str, tuple[Probe, int]] = {
    "health": (lambda c: c.get("/health"), 200),
    "ready": (lambda c: c.get("/ready"), 200),
    "openapi": (lambda c: c.get("/openapi.json"), 200),
    "docs": (lambda c: c.get("/docs"), 200),
    "me-200": (lambda c: c.get("/auth/me"), 200),
    "sessions-200": (lambda c: c.get("/auth/sessions"), 200),
    "me-401": (lambda c: c.get("/auth/me", headers={"Cookie": f"{COOKIE}=x"}), 401),
    "login-200": (
        lambda c: c.post("/auth/login", json={"email": "ann@example.com", "password": PASSWORD}),
        200,
    ),
    "login-401": (
        lambda c: c.post("/auth/login", json={"email": "ann@example.com", "password": "no"}),
        401,
    ),
    "register-409": (
        lambda c: c.post("/auth/register", json={"email": "ann@example.com", "password": PASSWORD}),
        409,
    ),
    "login-400": (
        lambda c: c.post("/auth/login", content=b"{", headers={"Content-Type": "application/json"}),
        400,
    ),
    "login-415": (lambda c: c.post("/auth/login", content=b"x"), 415),
    "login-422": (lambda c: c.post("/auth/login", json={}), 422),
    "not-found-404": (lambda c: c.get("/nowhere"), 404),
    "method-405": (lambda c: c.get("/auth/login"), 405),
    "options-405": (lambda c: c.options("/auth/login"), 405),
    "logout-204": (lambda c: c.post("/auth/logout"), 204),
    "streamed-413": (
        lambda c: c.post(
            "/auth/login",
            content=_oversize_stream(),
            headers={"Content-Type": "application/json"},
        ),
        413,
    ),
    "content-length-413": (
        lambda c: c.post(
            "/auth/login", content=b" " * 80_000, headers={"Content-Type": "application/json"}
        ),
        413,
    ),
    "cookie-431": (lambda c: c.get("/auth/me", headers={"Cookie": "a=" + "x" * 9000}), 431),
}


async def probe(client: httpx.AsyncClient, name: str) -> httpx.Response:
    action, status = PROBES[name]
    response = await action(client)
    assert response.status_code == status, response.text
    return response


def csp_directives(header: str) -> dict[str, list[str]]:
    """Parse a Content-Security-Policy into ``{directive: [source, ...]}``."""
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        tokens = part.split()
        if tokens:
            name = tokens[0].lower()
            assert name not in directives, f"{name} repeated"
            directives[name] = tokens[1:]
    return directives


@pytest.mark.parametrize("name", PROBES)
async def test_OPS_02_security_headers_on_every_response(
    signed_in: httpx.AsyncClient, name: str
) -> None:
    response = await probe(signed_in, name)
    headers = response.headers
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("referrer-policy") == "no-referrer"
    assert headers.get("x-frame-options") == "DENY"
    assert headers.get("cache-control") == "no-store"  # COOK-09
    csp = csp_directives(headers.get("content-security-policy", ""))
    assert csp.get("frame-ancestors") == ["'none'"]
    assert not any("'unsafe-inline'" in sources for sources in csp.values())
    hsts = headers.get("strict-transport-security", "")
    assert re.fullmatch(r"max-age=\d+(; ?includeSubDomains)?(; ?preload)?", hsts), hsts


@pytest.mark.parametrize("name", [n for n in PROBES if n != "docs"])
async def test_OPS_02_api_responses_get_the_locked_down_csp(
    signed_in: httpx.AsyncClient, name: str
) -> None:
    response = await probe(signed_in, name)
    csp = csp_directives(response.headers.get("content-security-policy", ""))
    assert csp.get("default-src") == ["'none'"]
    assert csp.get("frame-ancestors") == ["'none'"]
    assert csp.get("base-uri") == ["'none'"]


@pytest.mark.parametrize("name", ["health", "me-200", "login-401", "not-found-404"])
async def test_OPS_02_hsts_lasts_at_least_a_year_on_https(
    signed_in: httpx.AsyncClient, name: str
) -> None:
    response = await probe(signed_in, name)
    [hsts] = response.headers.get_list("strict-transport-security")
    max_age = re.match(r"max-age=(\d+)", hsts)
    assert max_age is not None
    assert int(max_age.group(1)) >= ONE_YEAR
    assert "includesubdomains" in hsts.lower()


@pytest.fixture
async def http_client(service: AuthService) -> AsyncIterator[httpx.AsyncClient]:
    """The app configured for a plain-http loopback origin (local development)."""
    settings = Settings(
        database_url="memory://", public_origin="http://127.0.0.1:8000", _env_file=None
    )
    app = create_app(velvetrope=Velvetrope(settings, service=service))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        yield http


@pytest.mark.parametrize("name", ["health", "login-200", "login-401", "not-found-404", "docs"])
async def test_OPS_02_no_hsts_for_a_plain_http_origin(
    http_client: httpx.AsyncClient, user_email: str, name: str
) -> None:
    response = await probe(http_client, name)
    assert "strict-transport-security" not in response.headers
    # everything else stays
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


async def test_OPS_02_no_hsts_for_plain_http_even_on_early_refusals(
    http_client: httpx.AsyncClient,
) -> None:
    response = await http_client.get("/auth/me", headers={"Cookie": "a=" + "x" * 9000})
    assert response.status_code == 431
    assert "strict-transport-security" not in response.headers


async def test_500_is_json_with_security_headers_and_leaks_nothing(
    vr: Velvetrope, service: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception becomes a bare ``internal_error``, still with every header."""

    async def explode(session_id: str, **_: object) -> Any:
        raise RuntimeError(f"database password is hunter2; id={session_id}")

    monkeypatch.setattr(service.session_strategy, "authenticate", explode)
    transport = httpx.ASGITransport(app=create_app(velvetrope=vr), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        response = await http.get("/auth/me", headers={"Cookie": f"{COOKIE}={'A' * 43}"})
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "detail": "Something went wrong on our side.",
    }
    assert "hunter2" not in response.text
    assert "A" * 43 not in response.text
    assert response.headers.get("cache-control") == "no-store"
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert "strict-transport-security" in response.headers


async def test_404_and_405_use_the_error_shape(client: httpx.AsyncClient) -> None:
    missing = await client.get("/auth/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "detail": "There is nothing at this path."}
    wrong = await client.delete("/auth/login")
    assert wrong.status_code == 405
    assert wrong.json() == {
        "error": "method_not_allowed",
        "detail": "This method is not allowed on this path.",
    }
    assert wrong.headers["allow"] == "POST"
    for response in (missing, wrong):
        assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/auth/me"),
        ("GET", "/auth/sessions"),
        ("DELETE", "/auth/sessions/0123456789abcdef01234567"),
        ("POST", "/auth/logout-all"),
        ("POST", "/auth/reauth"),
        ("POST", "/auth/password"),
    ],
)
async def test_401_without_session_carries_www_authenticate(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 401
    assert CHALLENGE_RE.fullmatch(response.headers["www-authenticate"])
    assert response.json() == {"error": "not_authenticated", "detail": "You are not signed in."}


async def test_401_for_bad_session_and_bad_password_carry_www_authenticate(
    client: httpx.AsyncClient, user_email: str
) -> None:
    bad_session = await client.get("/auth/me", headers={"Cookie": f"{COOKIE}={'A' * 43}"})
    bad_password = await client.post(
        "/auth/login", json={"email": user_email, "password": "wrong password"}
    )
    for response, code in [(bad_session, "session_invalid"), (bad_password, "invalid_credentials")]:
        assert response.status_code == 401
        assert CHALLENGE_RE.fullmatch(response.headers["www-authenticate"])
        assert response.json()["error"] == code


async def test_non_401_errors_carry_no_challenge(client: httpx.AsyncClient) -> None:
    for response in [
        await client.get("/nowhere"),
        await client.post("/auth/login", json={}),
        await client.post("/auth/login", content=b"x"),
    ]:
        assert response.status_code != 401
        assert "www-authenticate" not in response.headers


async def test_docs_csp_allows_exactly_its_inline_scripts(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    [header] = response.headers.get_list("content-security-policy")
    csp = csp_directives(header)
    every_source = [source for sources in csp.values() for source in sources]
    assert "'unsafe-inline'" not in every_source
    assert "'unsafe-eval'" not in every_source
    assert "*" not in every_source
    assert csp["default-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]

    inline = re.findall(r"<script>(.*?)</script>", response.text, flags=re.DOTALL)
    assert inline, "Swagger UI boots from an inline script"
    hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in inline
    }
    allowed_hashes = {s for s in csp["script-src"] if s.startswith("'sha256-")}
    assert hashes == allowed_hashes  # each inline script runs, nothing else inline does


EXPECTED_OPERATIONS = {
    "/auth/register": "post",
    "/auth/login": "post",
    "/auth/me": "get",
    "/auth/sessions": "get",
    "/auth/sessions/{handle}": "delete",
    "/auth/logout": "post",
    "/auth/logout-all": "post",
    "/auth/reauth": "post",
    "/auth/password": "post",
}


async def test_openapi_lists_every_auth_endpoint(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    paths: dict[str, dict[str, Any]] = document["paths"]
    for path, method in EXPECTED_OPERATIONS.items():
        assert path in paths, path
        assert method in paths[path], (path, sorted(paths[path]))
    assert "/docs" not in paths
    for path in ["/auth/register", "/auth/login", "/auth/reauth", "/auth/password"]:
        content = paths[path]["post"]["requestBody"]["content"]
        assert set(content) == {"application/json", "application/x-www-form-urlencoded"}
    assert "401" in paths["/auth/me"]["get"]["responses"]
