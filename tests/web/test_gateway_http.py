"""The edge check over HTTP, in process: what nginx and Caddy get from ``/auth/gateway``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from tests.support.services import ORIGIN, PASSWORD, app_settings, asgi_client
from velvetrope import AuthService, FrozenClock, Velvetrope, create_app
from velvetrope.core.gateway import INTERNAL_TYP, validate_internal_claims
from velvetrope.core.tokens import codec

AUDIENCE = "orders"


@pytest.fixture
async def vr_gateway(service: AuthService) -> Velvetrope:
    vr = Velvetrope(app_settings(gateway_audiences="orders,billing"), service=service)
    assert vr.context.gateway is not None
    await vr.context.gateway.start()
    return vr


@pytest.fixture
async def edge(vr_gateway: Velvetrope, service: AuthService) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in browser's headers as the proxy passes them on (cookie, Origin, CSRF)."""
    async with asgi_client(create_app(velvetrope=vr_gateway)) as http:
        http.headers["Origin"] = ORIGIN
        await service.register("ann@example.com", PASSWORD)
        login = await http.post(
            "/auth/login", json={"email": "ann@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200
        http.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        yield http


def proxied(method: str | None = "GET", audience: str | None = AUDIENCE) -> dict[str, str]:
    headers = {}
    if method is not None:
        headers["X-Original-Method"] = method
    if audience is not None:
        headers["X-Velvetrope-Audience"] = audience
    return headers


async def test_HYB_12_a_live_session_gets_an_internal_token_and_nothing_to_cache(
    edge: httpx.AsyncClient, clock: FrozenClock
) -> None:
    response = await edge.get("/auth/gateway", headers=proxied())
    assert response.status_code == 200
    assert response.content == b""
    assert "set-cookie" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    token = response.headers["X-Velvetrope-Token"]
    jwks = (await edge.get("/auth/gateway/jwks.json")).json()
    keys = {
        k["kid"]: (codec.jwk_from_json(json.dumps(k), k["alg"]), k["alg"]) for k in jwks["keys"]
    }
    decoded = codec.decode_compact(token, keys.get, typ=INTERNAL_TYP)
    claims = validate_internal_claims(
        decoded.claims, issuer=ORIGIN, audience=AUDIENCE, now=clock(), leeway=timedelta(0)
    )
    assert claims.expires_at - claims.issued_at == timedelta(seconds=60)


async def test_HYB_05_the_internal_jwks_is_not_the_access_token_jwks(
    edge: httpx.AsyncClient,
) -> None:
    internal = {k["kid"] for k in (await edge.get("/auth/gateway/jwks.json")).json()["keys"]}
    access = {k["kid"] for k in (await edge.get("/.well-known/jwks.json")).json()["keys"]}
    assert internal
    assert not internal & access


async def test_HYB_01_without_a_session_the_edge_gets_401_with_a_code_and_no_token(
    edge: httpx.AsyncClient,
) -> None:
    edge.cookies.clear()
    response = await edge.get("/auth/gateway", headers=proxied())
    assert response.status_code == 401
    assert response.json()["error"] == "session_invalid"
    assert response.headers["X-Velvetrope-Error"] == "session_invalid"
    assert "X-Velvetrope-Token" not in response.headers
    assert "set-cookie" not in response.headers
    assert response.headers["cache-control"] == "no-store"


async def test_HYB_01_an_expired_session_is_refused(
    edge: httpx.AsyncClient, clock: FrozenClock
) -> None:
    clock.advance(timedelta(minutes=31))  # past the idle timeout
    response = await edge.get("/auth/gateway", headers=proxied())
    assert response.status_code == 401
    assert response.json()["error"] == "session_expired"


@pytest.mark.parametrize("header", ["X-Original-Method", "X-Forwarded-Method"])
async def test_HYB_09_an_unsafe_original_method_needs_the_csrf_token(
    edge: httpx.AsyncClient, header: str
) -> None:
    token = edge.headers.pop("X-CSRF-Token")
    headers = {header: "DELETE", "X-Velvetrope-Audience": AUDIENCE}
    refused = await edge.get("/auth/gateway", headers=headers)
    assert refused.status_code == 403
    assert refused.json()["error"] == "csrf_failed"
    assert "X-Velvetrope-Token" not in refused.headers
    allowed = await edge.get("/auth/gateway", headers={**headers, "X-CSRF-Token": token})
    assert allowed.status_code == 200


async def test_HYB_09_an_unsafe_request_from_another_site_is_refused_even_with_the_token(
    edge: httpx.AsyncClient,
) -> None:
    headers = {**proxied("POST"), "Origin": "https://evil.example"}
    assert (await edge.get("/auth/gateway", headers=headers)).status_code == 403


@pytest.mark.parametrize(
    "methods",
    [
        {},  # the proxy did not say: unsafe
        {"X-Original-Method": "GET", "X-Forwarded-Method": "POST"},  # disagreeing
        {"X-Original-Method": "G E T"},  # not a method
    ],
)
async def test_HYB_09_a_missing_or_doubtful_method_counts_as_unsafe(
    edge: httpx.AsyncClient, methods: dict[str, str]
) -> None:
    edge.headers.pop("X-CSRF-Token")
    headers = {**methods, "X-Velvetrope-Audience": AUDIENCE}
    assert (await edge.get("/auth/gateway", headers=headers)).status_code == 403


@pytest.mark.parametrize("audience", [None, "payroll", "orders "])
async def test_HYB_08_an_audience_not_configured_gets_no_token(
    edge: httpx.AsyncClient, audience: str | None
) -> None:
    response = await edge.get("/auth/gateway", headers=proxied(audience=audience))
    assert response.status_code == 403
    assert response.json()["error"] == "gateway_audience_unknown"
    assert "X-Velvetrope-Token" not in response.headers


async def test_HYB_10_ready_reports_the_mint_cache_size_and_hit_ratio(
    edge: httpx.AsyncClient,
) -> None:
    first = await edge.get("/auth/gateway", headers=proxied())
    for _ in range(3):
        again = await edge.get("/auth/gateway", headers=proxied())
        assert again.headers["X-Velvetrope-Token"] == first.headers["X-Velvetrope-Token"]
    await edge.get("/auth/gateway", headers=proxied(audience="billing"))
    gateway = (await edge.get("/ready")).json()["gateway"]
    assert gateway["minted"] == 2
    cache = gateway["mint_cache"]
    assert (cache["entries"], cache["hits"], cache["misses"]) == (2, 3, 2)
    assert cache["hit_ratio"] == 0.6


async def test_HYB_07_sign_out_evicts_the_sessions_tokens(edge: httpx.AsyncClient) -> None:
    await edge.get("/auth/gateway", headers=proxied())
    cookies = dict(edge.cookies)
    assert (await edge.post("/auth/logout")).status_code == 204
    gateway = (await edge.get("/ready")).json()["gateway"]
    assert gateway["mint_cache"]["entries"] == 0
    edge.cookies.update(cookies)  # the old cookie, replayed
    assert (await edge.get("/auth/gateway", headers=proxied())).status_code == 401


async def test_the_gateway_is_off_without_audiences(
    service: AuthService, bare_client: httpx.AsyncClient
) -> None:
    assert (await bare_client.get("/auth/gateway", headers=proxied())).status_code == 404
    assert (await bare_client.get("/ready")).json()["gateway"] is None


async def test_HYB_12_the_servers_fast_path_answers_like_the_route(
    vr_gateway: Velvetrope, service: AuthService
) -> None:
    """``create_app`` answers ``/auth/gateway`` in front of its stack (EdgeCheck): the same
    token, the same refusals, the same headers."""
    assert create_app(velvetrope=vr_gateway).edge_check is not None  # type: ignore[attr-defined]
    async with asgi_client(create_app(velvetrope=vr_gateway)) as http:
        await service.register("bob@example.com", PASSWORD)
        login = await http.post(
            "/auth/login",
            json={"email": "bob@example.com", "password": PASSWORD},
            headers={"Origin": ORIGIN},
        )
        assert login.status_code == 200
        ok = await http.get("/auth/gateway", headers=proxied())
        assert ok.status_code == 200
        assert ok.headers["cache-control"] == "no-store"
        assert "set-cookie" not in ok.headers
        assert ok.headers["X-Velvetrope-Token"].count(".") == 2
        unsafe = await http.get("/auth/gateway", headers=proxied("POST"))
        assert unsafe.status_code == 403
        assert unsafe.headers["X-Velvetrope-Error"] == "csrf_failed"
        http.cookies.clear()
        missing = await http.get("/auth/gateway", headers=proxied())
        assert missing.status_code == 401
        assert "X-Velvetrope-Token" not in missing.headers
        huge = await http.get("/auth/gateway", headers={**proxied(), "Cookie": "x=" + "a" * 20_000})
        assert huge.status_code == 431
