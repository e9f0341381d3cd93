"""AuthMiddleware: the check as pure ASGI, in front of any app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Scope
from starlette.websockets import WebSocket

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


def _guarded_starlette(vr: Velvetrope) -> AuthMiddleware:
    async def secret(request: Request) -> JSONResponse:
        return JSONResponse({"secret": True})

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("secret over websocket")
        await websocket.close()

    inner = Starlette(
        routes=[
            Route("/api/orders", secret),
            Route("/api/public", secret),
            Route("/api/public-admin/export", secret),
            WebSocketRoute("/api/ws", ws),
        ]
    )
    return AuthMiddleware(inner, velvetrope=vr, protect=["/api"], exempt=["/api/public"])


async def _get(app: ASGIApp, path: str, *, root_path: str = "") -> int:
    transport = httpx.ASGITransport(app=app, root_path=root_path)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        return (await http.get(path)).status_code


async def test_guard_exemptions_end_at_a_path_segment(vr: Velvetrope) -> None:
    """`exempt=["/api/public"]` must not exempt `/api/public-admin/...`."""
    app = _guarded_starlette(vr)
    assert await _get(app, "/api/public") == 200
    assert await _get(app, "/api/public-admin/export") == 401
    assert await _get(app, "/api/orders") == 401


async def test_guard_matches_routes_under_a_root_path_or_mount(vr: Velvetrope) -> None:
    """Behind a proxy prefix (`root_path`) or inside a Mount, protected routes stay protected."""
    assert await _get(_guarded_starlette(vr), "/svc/api/orders", root_path="/svc") == 401
    mounted = Starlette(routes=[Mount("/v1", app=_guarded_starlette(vr))])
    assert await _get(mounted, "/v1/api/orders") == 401
    assert await _get(mounted, "/v1/api/public") == 200


async def test_guard_refuses_websockets_without_credentials(vr: Velvetrope) -> None:
    """Browsers send cookies on WebSocket upgrades: an unchecked one is hijackable."""
    sent: list[Message] = []
    incoming: list[Message] = [{"type": "websocket.connect"}]

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "websocket",
        "path": "/api/ws",
        "root_path": "",
        "headers": [],
        "query_string": b"",
        "scheme": "wss",
        "server": ("testserver", 443),
    }
    await _guarded_starlette(vr)(scope, receive, send)
    assert [m["type"] for m in sent] == ["websocket.close"]
    assert sent[0]["code"] == 1008
