"""AuthMiddleware: the check as pure ASGI, in front of any app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from tests.support.services import ORIGIN, PASSWORD
from velvetrope import AuthMiddleware, AuthService, Principal, Settings, Velvetrope
from velvetrope.web.browser import BrowserSignIn
from velvetrope.web.dependencies import PRINCIPAL_KEY


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


async def _upgrade(vr: Velvetrope, headers: list[tuple[bytes, bytes]]) -> list[Message]:
    """Offer a WebSocket upgrade to ``/api/ws`` of the guarded app; what it sent back."""
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
        "headers": headers,
        "query_string": b"",
        "scheme": "wss",
        "server": ("testserver", 443),
    }
    await _guarded_starlette(vr)(scope, receive, send)
    return sent


async def test_guard_refuses_websockets_without_credentials(vr: Velvetrope) -> None:
    """Browsers send cookies on WebSocket upgrades: an unchecked one is hijackable."""
    sent = await _upgrade(vr, [])
    assert [m["type"] for m in sent] == ["websocket.close"]
    assert sent[0]["code"] == 1008


# --- CSRF in the middleware (checklist 1.8) ------------------------------------------------

NOTES = "/api/notes"
SAME_ORIGIN = {"origin": ORIGIN, "sec-fetch-site": "same-origin"}
FORM = "application/x-www-form-urlencoded"


class Echo:
    """A pure ASGI app that reads the whole body and answers with what it received."""

    def __init__(self) -> None:
        self.received: list[list[Message]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        self.received.append(messages)
        principal: Principal = scope["state"][PRINCIPAL_KEY]
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        payload = {
            "user": principal.user_id,
            "body": body.decode("latin-1"),
            "complete": messages[-1]["type"] == "http.request",
        }
        await JSONResponse(payload)(scope, receive, send)


@dataclass
class Guarded:
    """AuthMiddleware around :class:`Echo`, and a signed-in browser's credentials."""

    app: AuthMiddleware
    echo: Echo
    cookie: str
    token: str
    bearer: str
    user_id: str


@pytest.fixture(params=["session", "jwt-cookie"])
async def guarded_echo(
    request: pytest.FixtureRequest, settings: Settings, service: AuthService
) -> Guarded:
    """Session mode and JWT-in-cookie mode, each with a cookie and the token bound to it."""
    mode = request.param
    vr = Velvetrope(settings.model_copy(update={"browser_credentials": mode}), service=service)
    user = await service.register("ann@example.com", PASSWORD)
    if mode == "session":
        signed = vr.browser.signed_in(await service.login(user.email, PASSWORD))
        cookie = f"{vr.transport.name}={signed.cookies[0][1]}"
    else:
        pair = await service.token_login(user.email, PASSWORD)
        principal = Principal(user_id=user.id, method="jwt-cookie", handle=pair.family.id)
        signed = BrowserSignIn(user, principal, vr.csrf.token_for(principal), ())
        cookie = f"{vr.context.cookies.access.name}={pair.access_token}"
    bearer = (await service.token_login(user.email, PASSWORD)).access_token
    echo = Echo()
    app = AuthMiddleware(echo, velvetrope=vr, protect=["/api"])
    return Guarded(app, echo, cookie, signed.csrf_token, bearer, user.id)


async def asgi_call(
    app: AuthMiddleware,
    headers: dict[str, str],
    chunks: list[bytes],
    *,
    method: str = "POST",
    disconnect: bool = False,
) -> tuple[int, dict[str, Any]]:
    """Drive ``app`` by hand: ``chunks`` as separate ``http.request`` messages (chunked
    transfer), optionally cut off by a disconnect before the last one."""
    incoming: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1 or disconnect}
        for i, chunk in enumerate(chunks)
    ]
    if disconnect:
        incoming.append({"type": "http.disconnect"})
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": NOTES,
        "raw_path": NOTES.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "scheme": "https",
        "server": ("testserver", 443),
        "client": ("203.0.113.7", 4711),
    }
    await app(scope, receive, send)
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, json.loads(body)


def form_headers(g: Guarded, **extra: str) -> dict[str, str]:
    return {**SAME_ORIGIN, "cookie": g.cookie, "content-type": FORM, **extra}


async def test_guard_a_form_with_the_token_passes_and_the_app_gets_the_whole_body(
    guarded_echo: Guarded,
) -> None:
    g = guarded_echo
    body = f"title=groceries&csrf_token={g.token}&note=milk+%26+eggs".encode()
    status, answer = await asgi_call(g.app, form_headers(g), [body])
    assert status == 200, answer
    assert answer == {"user": g.user_id, "body": body.decode(), "complete": True}


async def test_guard_a_form_body_in_chunks_is_reassembled_for_the_check_and_the_app(
    guarded_echo: Guarded,
) -> None:
    g = guarded_echo
    body = f"title=a&csrf_token={g.token}&note={'x' * 3000}".encode()
    chunks = [body[i : i + 7] for i in range(0, len(body), 7)]  # the token split across chunks
    status, answer = await asgi_call(g.app, form_headers(g), chunks)
    assert status == 200, answer
    assert answer["body"] == body.decode()
    assert answer["complete"] is True


@pytest.mark.parametrize(
    "body",
    [
        b"title=a",
        b"title=a&csrf_token=" + b"A" * 22 + b"." + b"A" * 43,
        b"csrf_token=",
        b"%ff%fe=1&csrf_token=x",
    ],
    ids=["no token", "forged", "empty", "not utf-8"],
)
async def test_guard_a_form_without_a_good_token_is_refused_before_the_app(
    guarded_echo: Guarded, body: bytes
) -> None:
    g = guarded_echo
    status, answer = await asgi_call(g.app, form_headers(g), [body])
    assert status == 403
    assert answer["error"] == "csrf_failed"
    assert "X-CSRF-Token" in answer["detail"]
    assert g.echo.received == []


async def test_guard_the_field_twice_is_refused(guarded_echo: Guarded) -> None:
    g = guarded_echo
    body = f"csrf_token={g.token}&csrf_token={g.token}".encode()
    status, _ = await asgi_call(g.app, form_headers(g), [body])
    assert status == 403
    assert g.echo.received == []


async def test_guard_a_header_token_passes_any_body_untouched(guarded_echo: Guarded) -> None:
    g = guarded_echo
    body = b'{"title": "x", "note": "' + b"y" * 100_000 + b'"}'
    headers = {
        **SAME_ORIGIN,
        "cookie": g.cookie,
        "content-type": "application/json",
        "x-csrf-token": g.token,
    }
    status, answer = await asgi_call(g.app, headers, [body[:50_000], body[50_000:]])
    assert status == 200
    assert answer["body"] == body.decode()


async def test_guard_a_bad_header_token_is_not_rescued_by_a_good_field(
    guarded_echo: Guarded,
) -> None:
    g = guarded_echo
    headers = form_headers(g, **{"x-csrf-token": "A" * 22 + "." + "A" * 43})
    status, _ = await asgi_call(g.app, headers, [f"csrf_token={g.token}".encode()])
    assert status == 403


@pytest.mark.parametrize(
    "where",
    [
        {"sec-fetch-site": "cross-site"},
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"referer": "https://testserver.evil.example/"},
        {},
    ],
)
async def test_guard_refuses_other_origins_even_with_the_token(
    guarded_echo: Guarded, where: dict[str, str]
) -> None:
    g = guarded_echo
    headers = {"cookie": g.cookie, "content-type": FORM, **where}
    status, answer = await asgi_call(g.app, headers, [f"csrf_token={g.token}".encode()])
    assert status == 403
    assert answer["error"] == "csrf_failed"
    assert g.echo.received == []


async def test_guard_a_form_over_the_limit_is_refused_without_reading_on(
    guarded_echo: Guarded,
) -> None:
    g = guarded_echo
    chunk = b"a=" + b"x" * 16_382 + b"&"
    chunks = [chunk] * 4 + [f"csrf_token={g.token}".encode()]  # the token after 64 KiB
    status, answer = await asgi_call(g.app, form_headers(g), chunks)
    assert status == 403
    assert "too large" in answer["detail"]
    assert g.echo.received == []


async def test_guard_a_form_just_under_the_limit_passes(guarded_echo: Guarded) -> None:
    g = guarded_echo
    tail = f"&csrf_token={g.token}".encode()
    body = b"a=" + b"x" * (64 * 1024 - 2 - len(tail)) + tail
    assert len(body) == 64 * 1024
    status, answer = await asgi_call(g.app, form_headers(g), [body[:1000], body[1000:]])
    assert status == 200
    assert len(answer["body"]) == len(body)


async def test_guard_a_cut_off_form_is_not_taken_for_a_whole_one(guarded_echo: Guarded) -> None:
    """The client disconnects after the chunk that carries the token: the rest of the
    form never came, so neither the token nor the part may pass for a complete form."""
    g = guarded_echo
    first = f"csrf_token={g.token}&amount=1".encode()
    status, _ = await asgi_call(g.app, form_headers(g), [first, b"000000"], disconnect=True)
    assert status == 403
    assert g.echo.received == []


async def test_guard_a_cut_off_bearer_body_reaches_the_app_as_unfinished(
    guarded_echo: Guarded,
) -> None:
    g = guarded_echo
    headers = {"authorization": f"Bearer {g.bearer}", "content-type": FORM}
    status, answer = await asgi_call(g.app, headers, [b"a=1&b=2", b"&c=3"], disconnect=True)
    assert status == 200
    assert answer["complete"] is False
    assert g.echo.received[0][-1]["type"] == "http.disconnect"


async def test_guard_bearer_requests_need_no_token_even_cross_site(guarded_echo: Guarded) -> None:
    g = guarded_echo
    headers = {
        "authorization": f"Bearer {g.bearer}",
        "content-type": FORM,
        "sec-fetch-site": "cross-site",
        "origin": "https://evil.example",
        "cookie": g.cookie,
    }
    status, answer = await asgi_call(g.app, headers, [b"title=x"])
    assert status == 200
    assert answer["body"] == "title=x"


async def test_guard_a_large_bearer_form_is_not_refused(guarded_echo: Guarded) -> None:
    """Bearer requests are exempt, so their forms are not buffered (nor limited) either."""
    g = guarded_echo
    headers = {"authorization": f"Bearer {g.bearer}", "content-type": FORM}
    body = b"a=" + b"x" * 100_000
    status, answer = await asgi_call(g.app, headers, [body[:50_000], body[50_000:]])
    assert status == 200
    assert len(answer["body"]) == len(body)


@pytest.mark.parametrize("method", ["post", "Post", "PUT", "PATCH", "DELETE", "PROPFIND"])
async def test_guard_every_method_but_the_safe_four_is_checked(
    guarded_echo: Guarded, method: str
) -> None:
    """A lower-case method is not GET: unknown methods are unsafe (fail closed)."""
    g = guarded_echo
    status, _ = await asgi_call(g.app, form_headers(g), [b"title=x"], method=method)
    assert status == 403


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
async def test_guard_safe_methods_are_not_csrf_checked(guarded_echo: Guarded, method: str) -> None:
    g = guarded_echo
    headers = {"cookie": g.cookie, "sec-fetch-site": "cross-site"}
    status, answer = await asgi_call(g.app, headers, [b""], method=method)
    assert status == 200
    assert answer["user"] == g.user_id


@pytest.mark.parametrize(
    ("headers", "accepted"),
    [
        ({"origin": "https://evil.example"}, False),
        ({"origin": "https://sub.testserver", "sec-fetch-site": "same-site"}, False),
        ({"origin": "null"}, False),
        ({}, False),  # a cookie and no Origin: not a browser page of ours
        ({"origin": ORIGIN, "sec-fetch-site": "same-origin"}, True),
        ({"origin": ORIGIN}, True),
    ],
)
async def test_guard_cookie_websockets_must_come_from_the_configured_origin(
    guarded_echo: Guarded, headers: dict[str, str], accepted: bool
) -> None:
    """Cross-site WebSocket hijacking: browsers send cookies on upgrades from any page,
    and a socket carries no CSRF token, so the origin check is the defence."""
    sent = await _upgrade(
        guarded_echo.app.velvetrope,
        [
            (b"cookie", guarded_echo.cookie.encode()),
            *((k.encode(), v.encode()) for k, v in headers.items()),
        ],
    )
    if accepted:
        assert sent[0]["type"] == "websocket.accept"
    else:
        assert [m["type"] for m in sent] == ["websocket.close"]
        assert sent[0]["code"] == 1008
