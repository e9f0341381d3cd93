"""Device-bound sessions (DBSC) on the wire, as Chromium speaks it.

::

    POST /auth/dbsc/register   Secure-Session-Response: <dbsc+jwt with the jwk>
                               -> 200 + the bound cookie + the session config
    POST /auth/dbsc/refresh    Sec-Secure-Session-Id: <id>
                               -> 403 + Secure-Session-Challenge: "<c>";id="<id>"
                               then, with Secure-Session-Response: <dbsc+jwt, jti=c>
                               -> 200 + a new bound cookie + the session config

Both find the session by its cookie (the browser sends its cookies). The config names
the refresh URL, the scope (this origin: the cookies are host-only, so
``include_site`` is always ``false``, which localhost and loopback require anyway),
and the bound cookie with the exact attributes its ``Set-Cookie`` carries. Every
successful refresh answers the whole config again, so Chromium drops any challenge it
cached and never resends an old proof. A proof for a challenge that is unknown, spent
or expired gets a new challenge (403), never a fatal error; a proof that is not signed
by the session's key gets ``400 invalid_device_proof`` (Chromium then ends its
session) and a security event. A session that ended, or that this key is not bound to,
gets ``{"continue": false}``: the browser stops refreshing it.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from velvetrope.core.binding.dbsc import device_session_id
from velvetrope.errors import CsrfFailed, InvalidDeviceProof, NotAuthenticated, StoreUnavailable
from velvetrope.stores.records import SessionRecord
from velvetrope.web.context import Ctx, WebContext
from velvetrope.web.openapi import BROWSER, answers, sets_cookie
from velvetrope.web.routes.auth import same_origin

__all__ = ["REFRESH_PATH", "build_dbsc_router"]

REFRESH_PATH = "/auth/dbsc/refresh"
RESPONSE_HEADER = "secure-session-response"
ID_HEADER = "sec-secure-session-id"
CHALLENGE_HEADER = "Secure-Session-Challenge"

routes = APIRouter(prefix="/auth/dbsc", tags=["device-bound sessions"])
routes.dependencies.append(Depends(same_origin))


def _header(request: Request, name: str) -> str | None:
    """A DBSC header's value: Chromium sends it raw, the draft as an sf-string; take both."""
    value = request.headers.get(name)
    if value is None:
        return None
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value or None


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _config(request: Request, ctx: WebContext, session: SessionRecord) -> Response:
    """200: the session config (registration and refresh alike) and a new bound cookie."""
    cookie = ctx.cookies.bound
    secure = "; Secure" if cookie.secure else ""
    root = _root(request)
    body = {
        "session_identifier": device_session_id(session),
        "refresh_url": root + REFRESH_PATH,
        "scope": {
            "include_site": False,
            "scope_specification": [{"type": "exclude", "domain": "*", "path": root + "/static"}],
        },
        "credentials": [
            {
                "type": "cookie",
                "name": cookie.name,
                # Must equal what Set-Cookie says (Max-Age aside), or Chromium never
                # finds the cookie it expects and refreshes on every request.
                "attributes": f"Path=/{secure}; HttpOnly; SameSite={cookie.samesite.title()}",
            }
        ],
    }
    value, ttl = ctx.service.binding.bound_cookie(session)
    response = JSONResponse(body)
    cookie.write(response, value, max_age=ttl)
    return response


def _end(ctx: WebContext, session_id: str | None) -> Response:
    """200 ``continue: false``: the browser ends its device-bound session."""
    response = JSONResponse({"session_identifier": session_id or "", "continue": False})
    ctx.cookies.bound.clear(response)
    return response


async def _challenge(ctx: WebContext, session: SessionRecord, session_id: str) -> Response:
    """403 with a new single-use challenge for the browser to sign."""
    challenge = await ctx.service.binding.challenge(session)
    headers = {CHALLENGE_HEADER: f'"{challenge}";id="{session_id}"'}
    return JSONResponse(
        {"error": "challenge", "detail": "Sign the challenge with the device key."},
        status_code=403,
        headers=headers,
    )


@routes.post(
    "/register",
    summary="Bind this session to the browser's device key (DBSC)",
    responses=answers(NotAuthenticated, InvalidDeviceProof, CsrfFailed, StoreUnavailable)
    | sets_cookie(200, required=True),
    openapi_extra=BROWSER,
)
async def register(request: Request, ctx: Ctx) -> Response:
    secret = ctx.cookies.session.read(request)
    proof = _header(request, RESPONSE_HEADER)
    if secret is None:
        raise NotAuthenticated
    if proof is None:
        raise InvalidDeviceProof("no Secure-Session-Response")
    bound = await ctx.service.binding.register(secret, proof)
    return _config(request, ctx, bound.record)


@routes.post(
    "/refresh",
    summary="Renew a device-bound session's short cookie (DBSC)",
    responses=answers(
        CsrfFailed,
        StoreUnavailable,
        extra=[(403, "challenge", "Secure-Session-Challenge")],
    )
    | sets_cookie(200),
)
async def refresh(request: Request, ctx: Ctx) -> Response:
    session_id = _header(request, ID_HEADER)
    secret = ctx.cookies.session.read(request)
    try:
        if secret is None:
            raise NotAuthenticated
        session = await ctx.service.live_session(secret)
    except NotAuthenticated:
        return _end(ctx, session_id)
    bound_id = device_session_id(session)
    if bound_id is None or bound_id != session_id:
        return _end(ctx, session_id)
    proof = _header(request, RESPONSE_HEADER)
    if proof is None or not await ctx.service.binding.refresh(session, proof):
        return await _challenge(ctx, session, bound_id)
    return _config(request, ctx, session)


def build_dbsc_router(ctx: WebContext) -> APIRouter:
    """The device-bound session endpoints, bound to ``ctx``."""
    router = APIRouter(dependencies=[Depends(ctx.bind)])
    router.include_router(routes)
    return router
