"""The edge check over HTTP, in process: what nginx and Caddy get from ``/auth/gateway``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.services import ORIGIN, PASSWORD, app_settings, asgi_client
from velvetrope import AuthService, FrozenClock, Velvetrope, create_app
from velvetrope.core.gateway import INTERNAL_TYP, validate_internal_claims
from velvetrope.core.tokens import codec

AUDIENCE = "orders"


@pytest.fixture
async def gateway_client(service: AuthService) -> AsyncIterator[httpx.AsyncClient]:
    vr = Velvetrope(app_settings(gateway_audiences="orders,billing"), service=service)
    assert vr.context.gateway is not None
    await vr.context.gateway.start()
    async with asgi_client(create_app(velvetrope=vr)) as http:
        http.headers["Origin"] = ORIGIN
        await service.register("ann@example.com", PASSWORD)
        login = await http.post(
            "/auth/login", json={"email": "ann@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200
        http.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        yield http


def edge(method: str = "GET", audience: str = AUDIENCE) -> dict[str, str]:
    return {"X-Original-Method": method, "X-Velvetrope-Audience": audience}


async def test_HYB_01_a_live_session_gets_an_internal_token_of_its_own_typ(
    gateway_client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    response = await gateway_client.get("/auth/gateway", headers=edge())
    assert response.status_code == 200
    token = response.headers["X-Velvetrope-Token"]
    assert "set-cookie" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    jwks = (await gateway_client.get("/auth/gateway/jwks.json")).json()
    keys = {
        k["kid"]: (codec.jwk_from_json(__import__("json").dumps(k), k["alg"]), k["alg"])
        for k in jwks["keys"]
    }
    decoded = codec.decode_compact(token, keys.get, typ=INTERNAL_TYP)
    claims = validate_internal_claims(
        decoded.claims,
        issuer=ORIGIN,
        audience=AUDIENCE,
        now=clock(),
        leeway=__import__("datetime").timedelta(0),
    )
    assert claims.expires_at - claims.issued_at <= __import__("datetime").timedelta(seconds=60)
    assert set(decoded.claims) >= {"iss", "aud", "sub", "sid", "jti", "iat", "nbf", "exp"}
