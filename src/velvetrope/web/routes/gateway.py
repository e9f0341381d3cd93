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
from starlette.responses import JSONResponse, Response

from velvetrope.core.gateway import Gateway
from velvetrope.errors import AuthError, ConfigurationError
from velvetrope.web.context import Ctx, WebContext
from velvetrope.web.csrf import SAFE_METHODS, header_token
from velvetrope.web.errors import error_response

__all__ = [
    "AUDIENCE_HEADER",
    "ERROR_HEADER",
    "METHOD_HEADERS",
    "TOKEN_HEADER",
    "build_gateway_router",
]

TOKEN_HEADER = "X-Velvetrope-Token"  # noqa: S105 - a header name
ERROR_HEADER = "X-Velvetrope-Error"
AUDIENCE_HEADER = "X-Velvetrope-Audience"
METHOD_HEADERS = ("x-original-method", "x-forwarded-method")
_METHOD = re.compile(r"[A-Z]{1,16}")
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

routes = APIRouter(tags=["gateway"])


def _gateway(ctx: WebContext) -> Gateway:
    if ctx.gateway is None:  # the router is only included with a gateway
        raise ConfigurationError("the gateway is off (VELVETROPE_GATEWAY_AUDIENCES)")
    return ctx.gateway


def original_method(request: Request) -> str:
    """The method of the request the proxy is guarding.

    Read from ``X-Original-Method`` (nginx) and ``X-Forwarded-Method`` (Caddy). Anything
    but one well-formed method named consistently (no header, repeated or disagreeing
    lines, a value that is not a method) counts as ``POST``: unsafe, so CSRF is checked.
    """
    named = {
        value.strip().upper() for name, value in request.headers.items() if name in METHOD_HEADERS
    }
    if len(named) != 1:
        return "POST"
    method = named.pop()
    return method if _METHOD.fullmatch(method) else "POST"


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
    try:
        gateway = _gateway(ctx)
        audience = gateway.audience(request.headers.get(AUDIENCE_HEADER))
        presented = ctx.cookies.session.read_scope(request.scope)
        principal = await gateway.authenticate(presented)
        method = original_method(request)
        if method not in SAFE_METHODS:
            scope = {**request.scope, "method": method}
            ctx.csrf.check(scope, principal, header_token(scope))
        minted = await gateway.token_for(principal, audience)
    except AuthError as exc:
        refused = error_response(exc)
        refused.headers[ERROR_HEADER] = exc.code
        refused.headers.update(_NO_STORE)
        return refused
    return Response(status_code=200, headers={TOKEN_HEADER: minted.token, **_NO_STORE})


@routes.get("/auth/gateway/jwks.json", summary="Public keys that verify internal tokens")
async def gateway_jwks(ctx: Ctx) -> JSONResponse:
    return JSONResponse(_gateway(ctx).jwks(), headers={"Cache-Control": "public, max-age=60"})


def build_gateway_router(ctx: WebContext) -> APIRouter:
    """The edge check and the internal JWKS, bound to ``ctx``."""
    router = APIRouter(dependencies=[Depends(ctx.bind)])
    router.include_router(routes)
    return router
