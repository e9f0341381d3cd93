"""The edge check (issue 10): ``GET /auth/gateway`` for nginx ``auth_request`` and
Caddy ``forward_auth``, and the internal tokens' JWKS.

The proxy sends the browser's request headers (its cookies, ``Origin``,
``Sec-Fetch-Site``, ``X-CSRF-Token``), the original method (nginx:
``X-Original-Method``; Caddy: ``X-Forwarded-Method``) and the service it is guarding
(``X-Velvetrope-Audience``, set per location). The answer is:

* ``200`` with ``X-Velvetrope-Token: <internal JWT>`` for a live session (and, for an
  unsafe original method, a request that passes the CSRF checks);
* ``401``/``403`` in the house error shape, ``X-Velvetrope-Error: <code>`` for the
  proxy's own error page, and never a token.

Every answer is ``Cache-Control: no-store`` and sets no cookie: the edge never passes
a ``Set-Cookie`` of the auth subrequest on, and nothing here may be cached. The
original method is missing only when the proxy is misconfigured; it then counts as
unsafe, so the CSRF checks run (fail closed); so does a client-sent method header that
disagrees with the proxy's.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from velvetrope.core.gateway import Gateway
from velvetrope.errors import AuthError, ConfigurationError
from velvetrope.web.context import Ctx, WebContext
from velvetrope.web.csrf import SAFE_METHODS, header_token
from velvetrope.web.errors import HeaderTooLarge, error_response

__all__ = [
    "AUDIENCE_HEADER",
    "ERROR_HEADER",
    "METHOD_HEADERS",
    "TOKEN_HEADER",
    "EdgeCheck",
    "answer",
    "build_gateway_router",
    "edge_token",
    "refusal",
]

TOKEN_HEADER = "X-Velvetrope-Token"  # noqa: S105 - a header name
ERROR_HEADER = "X-Velvetrope-Error"
AUDIENCE_HEADER = "X-Velvetrope-Audience"
METHOD_HEADERS = ("x-original-method", "x-forwarded-method")
PATH = "/auth/gateway"
_METHOD = re.compile(r"[A-Z]{1,16}")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_TOKEN_KEY = TOKEN_HEADER.lower().encode("ascii")
_EMPTY_NO_STORE = [
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
    (b"content-length", b"0"),
]

routes = APIRouter(tags=["gateway"])


def _gateway(ctx: WebContext) -> Gateway:
    if ctx.gateway is None:  # the router is only included with a gateway
        raise ConfigurationError("the gateway is off (VELVETROPE_GATEWAY_AUDIENCES)")
    return ctx.gateway


def original_method(headers: Headers) -> str:
    """The method of the request the proxy is guarding.

    Read from ``X-Original-Method`` (nginx) and ``X-Forwarded-Method`` (Caddy). Anything
    but one well-formed method named consistently (no header, repeated or disagreeing
    lines, a value that is not a method) counts as ``POST``: unsafe, so CSRF is checked.
    """
    named = {value.strip().upper() for name, value in headers.items() if name in METHOD_HEADERS}
    if len(named) != 1:
        return "POST"
    method = named.pop()
    return method if _METHOD.fullmatch(method) else "POST"


async def edge_token(ctx: WebContext, scope: Scope) -> str:
    """The internal token the request in ``scope`` earns.

    Raises:
        AuthError: The refusal (no live session, CSRF, an unknown audience, a store
            outage...).
    """
    headers = Headers(scope=scope)
    gateway = _gateway(ctx)
    if len(headers.get("cookie", "")) > ctx.settings.max_cookie_bytes:
        raise HeaderTooLarge
    audience = gateway.audience(headers.get(AUDIENCE_HEADER))
    principal = await gateway.authenticate(ctx.cookies.session.read_scope(scope))
    method = original_method(headers)
    if method not in SAFE_METHODS:
        unsafe = {**scope, "method": method}
        ctx.csrf.check(unsafe, principal, header_token(unsafe))
    return (await gateway.token_for(principal, audience)).token


def refusal(exc: AuthError) -> Response:
    """The refusal the proxy gets: the house error, its code in a header, nothing to keep."""
    refused = error_response(exc)
    refused.headers[ERROR_HEADER] = exc.code
    refused.headers.update(_NO_STORE)
    return refused


async def answer(ctx: WebContext, scope: Scope) -> Response:
    """The edge check for the request in ``scope``: 200 with the token, or the refusal."""
    try:
        token = await edge_token(ctx, scope)
    except AuthError as exc:
        return refusal(exc)
    return Response(status_code=200, headers={TOKEN_HEADER: token, **_NO_STORE})


@routes.get(
    "/auth/gateway",
    summary="Edge check for nginx auth_request / Caddy forward_auth",
    responses={
        200: {"description": f"A live session: the internal JWT in {TOKEN_HEADER}"},
        401: {"description": "No live session"},
        403: {"description": "CSRF refused, or an unknown audience"},
        503: {"description": "The store did not answer"},
    },
)
async def gateway_check(request: Request, ctx: Ctx) -> Response:
    return await answer(ctx, request.scope)


class EdgeCheck:
    """``GET /auth/gateway`` as pure ASGI, in front of the whole server app: the edge asks
    on every request it lets through, so its check skips routing and the middleware
    stack (the answer is headers for the proxy, never a page). Everything else passes on.
    """

    def __init__(self, app: ASGIApp, ctx: WebContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "GET":
            try:
                token = await edge_token(self.ctx, scope)
            except AuthError as exc:
                await refusal(exc)(scope, receive, send)
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(_TOKEN_KEY, token.encode("ascii")), *_EMPTY_NO_STORE],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


@routes.get("/auth/gateway/jwks.json", summary="Public keys that verify internal tokens")
async def gateway_jwks(ctx: Ctx) -> JSONResponse:
    return JSONResponse(_gateway(ctx).jwks(), headers={"Cache-Control": "public, max-age=60"})


def build_gateway_router(ctx: WebContext) -> APIRouter:
    """The edge check and the internal JWKS, bound to ``ctx``."""
    router = APIRouter(dependencies=[Depends(ctx.bind)])
    router.include_router(routes)
    return router
