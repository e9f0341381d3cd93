"""``/auth/*``: register, sign in, who am I, devices, sign out.

Routes translate HTTP to the service and the browser flows and back; they never
touch stores. Each handler is a plain function that receives the request's
:class:`~velvetrope.web.context.WebContext` (``ctx: Ctx``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

from velvetrope.core.principal import Principal
from velvetrope.errors import (
    AccountDisabled,
    CsrfFailed,
    EmailTaken,
    InvalidCredentials,
    InvalidEmail,
    InvalidGrant,
    InvalidInput,
    NotAuthenticated,
    ReauthRequired,
    SessionNotFound,
    StoreUnavailable,
    TooManyAttempts,
    WeakPassword,
)
from velvetrope.web.bodies import (
    Credentials,
    PasswordChange,
    PasswordProof,
    SignInCredentials,
    form_or_json_schema,
    read_body,
)
from velvetrope.web.browser import BrowserSignIn
from velvetrope.web.client import client_of
from velvetrope.web.context import Ctx, WebContext
from velvetrope.web.csrf import SAFE_METHODS, form_token
from velvetrope.web.openapi import (
    AUTHENTICATED,
    BODY,
    BROWSER,
    BROWSER_OPTIONAL,
    OPTIONAL_AUTH,
    SIGNED_IN,
    answers,
    sets_cookie,
)
from velvetrope.web.schemas import (
    CsrfOut,
    CurrentSessionOut,
    LoginOut,
    MeOut,
    SessionOut,
    UserOut,
    iso,
)

__all__ = ["build_auth_router", "current_principal", "same_origin"]

STORE = StoreUnavailable
USE_THE_GRANT = "Token clients re-authenticate with grant_type=password at /auth/token."


async def same_origin(request: Request, ctx: Ctx) -> None:
    """Router dependency: unsafe requests must pass the origin check (CSRF-05..07).

    The standalone server also runs :class:`~velvetrope.web.middleware.OriginCheck`;
    this makes the routes safe in any app that includes the router.
    """
    if request.method in SAFE_METHODS or ctx.authenticator.presents_non_ambient(request.scope):
        return
    carries = ctx.carries_cookie(request.scope)
    reason = ctx.csrf.policy.refusal(request.scope, carries_cookie=carries)
    if reason is not None:
        raise CsrfFailed(reason)


async def current_principal(connection: HTTPConnection, ctx: Ctx) -> Principal:
    """Dependency: the signed-in caller, CSRF-checked (see ``Gate.principal``)."""
    return await ctx.gate.principal(connection)


Current = Annotated[Principal, Depends(current_principal)]

routes = APIRouter(prefix="/auth", tags=["auth"], dependencies=[Depends(same_origin)])
cookie_refresh = APIRouter(prefix="/auth", tags=["auth"], dependencies=[Depends(same_origin)])


def _is_form(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    return media_type == "application/x-www-form-urlencoded"


def _signed_in(sign_in: BrowserSignIn) -> Response:
    body = {"user": UserOut.of(sign_in.user).model_dump(), "csrf_token": sign_in.csrf_token}
    return sign_in.apply(JSONResponse(body))


async def _check_form_csrf(request: Request, ctx: WebContext) -> None:
    # Login CSRF: a form post (the sign-in and sign-up pages) must carry the token
    # bound to the pre-session cookie. JSON needs a CORS preflight cross-site, and
    # the origin check already ran.
    if _is_form(request):
        ctx.csrf.check_presession(request, await form_token(request))


def _signed_out_if_ambient(ctx: WebContext, principal: Principal, response: Response) -> Response:
    """Clear the browser's cookies when a cookie authenticated the request."""
    if ctx.authenticator.is_ambient(principal):
        return ctx.browser.sign_out(response)
    return response


@routes.post(
    "/register",
    status_code=201,
    response_model=UserOut,
    summary="Create an account",
    openapi_extra=form_or_json_schema(Credentials),
    responses=answers(
        *BODY, InvalidEmail, WeakPassword, EmailTaken, TooManyAttempts, CsrfFailed, STORE
    ),
)
async def register(request: Request, ctx: Ctx) -> JSONResponse:
    body = await read_body(request, Credentials)
    await _check_form_csrf(request, ctx)
    user = await ctx.service.register(body.email, body.password, ip=client_of(request).ip)
    await ctx.service.welcome(user)  # a verification link, when mail can be sent
    return JSONResponse(UserOut.of(user).model_dump(), status_code=201)


@routes.post(
    "/login",
    response_model=LoginOut,
    summary="Sign in; sets the session cookie",
    description="`remember` (default `true`): `false` sets a browser-session cookie (no "
    "`Max-Age`) and a shorter server-side lifetime (`VELVETROPE_SESSION_TRANSIENT_LIFETIME`).",
    openapi_extra=form_or_json_schema(SignInCredentials),
    responses=answers(
        *BODY, InvalidCredentials, AccountDisabled, TooManyAttempts, CsrfFailed, STORE
    )
    | sets_cookie(200, required=True),
)
async def login(request: Request, ctx: Ctx) -> Response:
    body = await read_body(request, SignInCredentials)
    await _check_form_csrf(request, ctx)
    remember = body.remember is not False
    return _signed_in(
        await ctx.browser.login(request, body.email, body.password, remember=remember)
    )


@routes.get(
    "/csrf",
    response_model=CsrfOut,
    summary="A CSRF token for this sign-in (or for a sign-in form)",
    responses=answers(InvalidInput, STORE) | sets_cookie(200),
    openapi_extra=BROWSER_OPTIONAL,
)
async def csrf(request: Request, ctx: Ctx) -> Response:
    if ctx.authenticator.presents_non_ambient(request.scope):
        raise InvalidInput("Requests with Authorization: Bearer need no CSRF token.")
    try:
        principal = await ctx.authenticator.authenticate(request.scope)
    except NotAuthenticated:
        family = await ctx.browser.live_refresh_family(request)
        if family is not None:  # JWT cookies: the access token expired, renew with this
            return JSONResponse({"csrf_token": ctx.csrf.token_for_family(family)})
        presession = ctx.csrf.presession(request)
        response = JSONResponse({"csrf_token": presession.token})
        ctx.csrf.remember(response, presession)
        return response
    return JSONResponse({"csrf_token": ctx.csrf.token_for(principal)})


@routes.get(
    "/me",
    response_model=MeOut,
    summary="Who am I",
    responses=answers(*AUTHENTICATED),
    openapi_extra=SIGNED_IN,
)
async def me(principal: Current, ctx: Ctx) -> JSONResponse:
    user = await ctx.service.user_of(principal)
    created, expires = await _device_times(ctx, principal)
    body = MeOut(
        id=user.id,
        email=user.email,
        email_verified=user.email_verified_at is not None,
        session=CurrentSessionOut(id=principal.handle, created_at=created, expires_at=expires),
    )
    return JSONResponse(body.model_dump())


async def _device_times(ctx: WebContext, principal: Principal) -> tuple[str, str | None]:
    """When the principal's device signed in and when its credential ends, if known."""
    if principal.session is not None:
        deadline = ctx.service.session_deadline(principal.session)
        return iso(principal.session.created_at), iso(deadline)
    if principal.token is not None:
        family = await ctx.service.family(principal.handle)
        created = family.created_at if family else principal.token.issued_at
        return iso(created), iso(principal.token.expires_at)
    device = next((d for d in await ctx.devices(principal) if d.current), None)
    return iso(device.created_at if device else ctx.service.now()), None


@routes.get(
    "/sessions",
    response_model=list[SessionOut],
    summary="My sessions and token families (devices)",
    responses=answers(*AUTHENTICATED),
    openapi_extra=SIGNED_IN,
)
async def sessions(principal: Current, ctx: Ctx) -> JSONResponse:
    devices = await ctx.devices(principal)
    return JSONResponse([SessionOut.of(d).model_dump() for d in devices])


@routes.delete(
    "/sessions/{handle}",
    status_code=204,
    summary="Sign one device out",
    responses=answers(*AUTHENTICATED, ReauthRequired, SessionNotFound) | sets_cookie(204),
    openapi_extra=SIGNED_IN,
)
async def end_session(handle: str, principal: Current, ctx: Ctx) -> Response:
    current = await ctx.end_device(principal, handle)
    response = Response(status_code=204)
    return _signed_out_if_ambient(ctx, principal, response) if current else response


@routes.post(
    "/logout",
    status_code=204,
    summary="Sign out this device (session cookie or bearer token family)",
    responses=answers(*AUTHENTICATED) | sets_cookie(204),
    openapi_extra=OPTIONAL_AUTH,
)
async def logout(request: Request, ctx: Ctx) -> Response:
    if ctx.authenticator.presents_non_ambient(request.scope):
        principal = await ctx.gate.principal(request)  # 401 if the token is invalid
        await ctx.authenticator.sign_out(principal)
        return Response(status_code=204)
    await ctx.browser.logout(request)
    return ctx.browser.sign_out(Response(status_code=204))


@routes.post(
    "/logout-all",
    status_code=204,
    summary="Sign out every device, this one included",
    responses=answers(*AUTHENTICATED, ReauthRequired) | sets_cookie(204),
    openapi_extra=SIGNED_IN,
)
async def logout_all(principal: Current, ctx: Ctx) -> Response:
    await ctx.sign_out_everywhere(principal)
    return _signed_out_if_ambient(ctx, principal, Response(status_code=204))


@routes.post(
    "/reauth",
    response_model=LoginOut,
    summary="Confirm the password; renews the session",
    openapi_extra=form_or_json_schema(PasswordProof) | BROWSER,
    responses=answers(*BODY, *AUTHENTICATED, InvalidCredentials, AccountDisabled, TooManyAttempts)
    | sets_cookie(200, required=True),
)
async def reauth(request: Request, principal: Current, ctx: Ctx) -> Response:
    body = await read_body(request, PasswordProof)
    if not ctx.authenticator.is_ambient(principal):
        raise InvalidInput(USE_THE_GRANT)
    return _signed_in(await ctx.browser.reauthenticate(request, principal, body.password))


@routes.post(
    "/password",
    status_code=204,
    summary="Change the password; signs every other device out",
    openapi_extra=form_or_json_schema(PasswordChange) | SIGNED_IN,
    responses=answers(*BODY, *AUTHENTICATED, InvalidCredentials, WeakPassword, TooManyAttempts)
    | sets_cookie(204),
)
async def change_password(request: Request, principal: Current, ctx: Ctx) -> Response:
    body = await read_body(request, PasswordChange)
    secret = ctx.cookies.session.read(request) if principal.session else None
    sign_in = await ctx.change_password(principal, secret, body, ip=client_of(request).ip)
    response = Response(status_code=204)
    if sign_in is None:  # every token ended: a cookie client signs in again
        return _signed_out_if_ambient(ctx, principal, response)
    return ctx.browser.signed_in(sign_in).apply(response)


@cookie_refresh.post(
    "/refresh",
    response_model=LoginOut,
    summary="JWT-in-cookie mode: new access and refresh cookies",
    responses=answers(*AUTHENTICATED, InvalidGrant) | sets_cookie(200, required=True),
    openapi_extra=BROWSER,
)
async def refresh(request: Request, ctx: Ctx) -> Response:
    family = await ctx.browser.live_refresh_family(request)
    if family is None:
        raise NotAuthenticated
    ctx.csrf.check_family(request.scope, family, await form_token(request))
    principal, pair = await ctx.browser.refresh(request)
    user = await ctx.service.user_of(principal)
    body = {"user": UserOut.of(user).model_dump(), "csrf_token": ctx.csrf.token_for(principal)}
    return ctx.browser.apply_pair(JSONResponse(body), pair)


def build_auth_router(ctx: WebContext) -> APIRouter:
    """The ``/auth`` routes bound to ``ctx`` (``/auth/refresh`` in JWT-cookie mode only)."""
    router = APIRouter(dependencies=[Depends(ctx.bind)])
    router.include_router(routes)
    if ctx.browser.jwt_cookies:
        router.include_router(cookie_refresh)
    return router
