"""The edge check (issues 10 and 11): ``GET /auth/gateway`` for nginx ``auth_request``
and Caddy ``forward_auth``, and the internal tokens' JWKS.

The proxy sends the client's request headers (its cookies, ``Origin``,
``Sec-Fetch-Site``, ``X-CSRF-Token``, ``Authorization``, ``DPoP``), the original method
(nginx: ``X-Original-Method``; Caddy: ``X-Forwarded-Method``), the original URI (nginx:
``X-Original-URI``; Caddy: ``X-Forwarded-Uri``) and the service it is guarding
(``X-Velvetrope-Audience``, set per location). Who is asking:

* a token caller, when the request carries ``Authorization: DPoP <token>`` with its
  ``DPoP`` proof, or ``Authorization: Bearer <access token>``: the access-token strategy
  decides, under the DPoP policy (a DPoP-bound token sent as ``Bearer`` is refused with
  the DPoP challenge). The proof must name the *original* request: ``htm`` the original
  method, ``htu`` the public origin and the original path without its query. Without
  an original URI from the proxy a proof cannot be checked, and is refused
  (``gateway_uri_missing``). Not ambient, so no CSRF check. As everywhere in
  velvetrope, a credential that is present decides: a bad token is refused even when
  a good cookie rides along;
* otherwise a browser, by its session cookie, with the CSRF checks for unsafe
  original methods.

The answer is:

* ``200`` with ``X-Velvetrope-Token: <internal JWT>``;
* ``401``/``403`` in the house error shape (with the refusing way in's
  ``WWW-Authenticate``), ``X-Velvetrope-Error: <code>`` for the proxy's own error
  page, and never a token; ``503`` ``store_unavailable`` when the store did not answer.

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

from velvetrope.core.binding.dpop import dpop_challenge
from velvetrope.core.credentials import Presented
from velvetrope.core.gateway import Gateway
from velvetrope.core.principal import Principal
from velvetrope.errors import AuthError, ConfigurationError, OriginalUriMissing
from velvetrope.web.backends import AuthBackend
from velvetrope.web.context import BEARER, DPOP, Ctx, WebContext
from velvetrope.web.csrf import SAFE_METHODS, header_token
from velvetrope.web.errors import HeaderTooLarge, error_response

__all__ = [
    "AUDIENCE_HEADER",
    "ERROR_HEADER",
    "METHOD_HEADERS",
    "TOKEN_HEADER",
    "URI_HEADERS",
    "EdgeCheck",
    "answer",
    "build_gateway_router",
    "edge_token",
    "original_method",
    "original_path",
    "refusal",
]

TOKEN_HEADER = "X-Velvetrope-Token"  # noqa: S105 - a header name
ERROR_HEADER = "X-Velvetrope-Error"
AUDIENCE_HEADER = "X-Velvetrope-Audience"
METHOD_HEADERS = ("x-original-method", "x-forwarded-method")
URI_HEADERS = ("x-original-uri", "x-forwarded-uri")
TOKEN_WAYS = (BEARER, DPOP)
PATH = "/auth/gateway"
_METHOD = re.compile(r"[A-Z]{1,16}")
_PATH = re.compile(r"/[\x21-\x7e]{0,8191}")  # origin-form: visible ASCII, no space
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


def original_path(headers: Headers) -> str | None:
    """The path of the request the proxy is guarding, without its query.

    Read from ``X-Original-URI`` (nginx) and ``X-Forwarded-Uri`` (Caddy). ``None`` when
    it is missing or doubtful: no header, repeated or disagreeing lines, or a value that
    is not an origin-form request target.
    """
    named = {value for name, value in headers.items() if name in URI_HEADERS}
    if len(named) != 1:
        return None
    uri = named.pop()
    return uri.split("?", 1)[0] if _PATH.fullmatch(uri) else None


def _token_credential(
    ctx: WebContext, scope: Scope, method: str, path: str | None
) -> tuple[AuthBackend, Presented] | None:
    """The access token the request carries (``DPoP`` or ``Bearer``), read as if the
    original request had been made to velvetrope itself, and the way in that read it."""
    original: Scope = {
        **scope,
        "method": method,
        "path": path or "",
        "raw_path": (path or "").encode("latin-1"),
        "query_string": b"",
    }
    for backend in ctx.authenticator.backends:
        if backend.name not in TOKEN_WAYS:
            continue
        credential = backend.transport.read_scope(original)
        if credential is None:
            continue
        if credential.proof is not None and path is None:
            algorithms = ctx.service.dpop.policy.algorithms
            raise OriginalUriMissing("no original URI").challenged(
                dpop_challenge(algorithms, "invalid_dpop_proof")
            )
        return backend, credential
    return None


async def edge_token(ctx: WebContext, scope: Scope) -> str:
    """The internal token the request in ``scope`` earns.

    Raises:
        AuthError: The refusal (no live session or token, a bad DPoP proof, CSRF, an
            unknown audience, a store outage...).
    """
    headers = Headers(scope=scope)
    gateway = _gateway(ctx)
    if len(headers.get("cookie", "")) > ctx.settings.max_cookie_bytes:
        raise HeaderTooLarge
    audience = gateway.audience(headers.get(AUDIENCE_HEADER))
    method = original_method(headers)
    found = _token_credential(ctx, scope, method, original_path(headers))
    principal: Principal
    if found is not None:  # not ambient: no CSRF check
        backend, credential = found
        # As sessions are read past the near-cache: a revocation made on another node
        # counts on the very next edge request, not when its push arrives.
        await ctx.service.sync_revocations()
        principal = await backend.strategy.authenticate(credential, method="gateway")
    else:
        principal = await gateway.authenticate(ctx.cookies.session.read_scope(scope))
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
        200: {"description": f"A live session or token: the internal JWT in {TOKEN_HEADER}"},
        401: {"description": "No live session, or a token or DPoP proof refused"},
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
    return JSONResponse(
        await _gateway(ctx).published_jwks(), headers={"Cache-Control": "public, max-age=60"}
    )


def build_gateway_router(ctx: WebContext) -> APIRouter:
    """The edge check and the internal JWKS, bound to ``ctx``."""
    router = APIRouter(dependencies=[Depends(ctx.bind)])
    router.include_router(routes)
    return router
