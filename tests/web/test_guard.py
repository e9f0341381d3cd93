"""AuthMiddleware: the check as pure ASGI, in front of any app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.conftest import ORIGIN, PASSWORD
from velvetrope import AuthMiddleware, AuthService, Principal, Velvetrope
from velvetrope.web.extension import PRINCIPAL_KEY


async def whoami(request: Request) -> JSONResponse:
    principal: Principal | None = request.state._state.get(PRINCIPAL_KEY)
    return JSONResponse({"user": principal.user_id if principal else None})


@pytest.fixture
async def guarded(vr: Velvetrope) -> AsyncIterator[httpx.AsyncClient]:
    """A plain Starlette app (no FastAPI) behind the middleware."""
    app = Starlette(routes=[Route("/api/me", whoami), Route("/api/public/ping", whoami)])
    wrapped = AuthMiddleware(app, velvetrope=vr, protect=["/api"], exempt=["/api/public"])
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        yield http


async def test_guard_refuses_without_credentials_in_the_house_shape(
    guarded: httpx.AsyncClient,
) -> None:
    response = await guarded.get("/api/me")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert response.headers["www-authenticate"] == 'Bearer realm="velvetrope"'


async def test_guard_passes_exempt_paths(guarded: httpx.AsyncClient) -> None:
    response = await guarded.get("/api/public/ping")
    assert response.status_code == 200
    assert response.json() == {"user": None}


async def test_guard_hands_the_principal_to_the_app(
    guarded: httpx.AsyncClient, service: AuthService, vr: Velvetrope
) -> None:
    user = await service.register("ann@example.com", PASSWORD)
    sign_in = await service.login("ann@example.com", PASSWORD)
    cookie = {"Cookie": f"{vr.transport.name}={sign_in.session.secret}"}
    response = await guarded.get("/api/me", headers=cookie)
    assert response.json() == {"user": user.id}
    pair = await service.token_login("ann@example.com", PASSWORD)
    bearer = {"Authorization": f"Bearer {pair.access_token}"}
    assert (await guarded.get("/api/me", headers=bearer)).json() == {"user": user.id}
    await service.end_session_id(sign_in.session.secret)
    assert (await guarded.get("/api/me", headers=cookie)).status_code == 401
    bad = await guarded.get("/api/me", headers={"Authorization": "Bearer x.y.z"})
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_token"
