"""``/auth/*``: register, sign in, who am I, devices, sign out.

Routes translate HTTP to :class:`~velvetrope.core.service.AuthService` calls and back;
they never touch stores.
"""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from velvetrope.core.principal import Principal
from velvetrope.errors import CsrfFailed, InvalidInput, NotAuthenticated
from velvetrope.web.bodies import (
    Credentials,
    PasswordChange,
    PasswordProof,
    form_or_json_schema,
    read_body,
)
from velvetrope.web.csrf import SAFE_METHODS, form_token
from velvetrope.web.extension import BrowserSignIn
from velvetrope.web.schemas import (
    CsrfOut,
    CurrentSessionOut,
    ErrorOut,
    LoginOut,
    MeOut,
    SessionOut,
    UserOut,
    iso,
)

if TYPE_CHECKING:
    from velvetrope.web.extension import Velvetrope

__all__ = ["build_auth_router"]


def _errors(*statuses: int) -> dict[int | str, dict[str, object]]:
    return {status: {"model": ErrorOut} for status in statuses}


def _client(request: Request) -> tuple[str, str]:
    ip = request.client.host if request.client else ""
    return ip, request.headers.get("user-agent", "")


def _is_form(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    return media_type == "application/x-www-form-urlencoded"


def same_origin_dependency(vr: "Velvetrope") -> Callable[[Request], Awaitable[None]]:
    """A router dependency: unsafe requests must pass the origin check (CSRF-05..07).

    The standalone server also runs :class:`~velvetrope.web.middleware.OriginCheck`;
    this makes the routes safe in any app that includes ``vr.router``.
    """

    async def same_origin(request: Request) -> None:
        if request.method in SAFE_METHODS or vr.bearer.read(request) is not None:
            return
        reason = vr.csrf.policy.refusal(request.scope, carries_cookie=vr.carries_cookie(request))
        if reason is not None:
            raise CsrfFailed(reason)

    return same_origin


def build_auth_router(vr: "Velvetrope") -> APIRouter:  # noqa: PLR0915 - a closure per route
    """Return the ``/auth`` router bound to ``vr``."""
    router = APIRouter(
        prefix="/auth", tags=["auth"], dependencies=[Depends(same_origin_dependency(vr))]
    )
    service = vr.service
    transport = vr.transport
    Current = Annotated[Principal, Depends(vr.principal)]

    def signed_in(sign_in: BrowserSignIn) -> Response:
        body = {"user": UserOut.of(sign_in.user).model_dump(), "csrf_token": sign_in.csrf_token}
        return sign_in.apply(JSONResponse(body))

    def signed_out(response: Response) -> Response:
        return vr.sign_out(response)

    async def check_form_csrf(request: Request) -> None:
        # Login CSRF: a form post (the sign-in and sign-up pages) must carry the token
        # bound to the pre-session cookie. JSON needs a CORS preflight cross-site, and
        # the origin check already ran.
        if _is_form(request):
            vr.csrf.check_presession(request, await form_token(request))

    def session_id(request: Request) -> str:
        secret = transport.read(request)
        if secret is None:  # a bearer principal: sessions need a cookie
            raise InvalidInput(
                "Token clients re-authenticate with grant_type=password at /auth/token."
            )
        return secret

    @router.post(
        "/register",
        status_code=201,
        response_model=UserOut,
        summary="Create an account",
        openapi_extra=form_or_json_schema(Credentials),
        responses=_errors(409, 415, 422, 429),
    )
    async def register(request: Request) -> JSONResponse:
        body = await read_body(request, Credentials)
        await check_form_csrf(request)
        ip, _ = _client(request)
        user = await service.register(body.email, body.password, ip=ip)
        return JSONResponse(UserOut.of(user).model_dump(), status_code=201)

    @router.post(
        "/login",
        response_model=LoginOut,
        summary="Sign in; sets the session cookie",
        openapi_extra=form_or_json_schema(Credentials),
        responses=_errors(401, 403, 415, 422, 429),
    )
    async def login(request: Request) -> Response:
        body = await read_body(request, Credentials)
        await check_form_csrf(request)
        return signed_in(await vr.browser_login(request, body.email, body.password))

    @router.get(
        "/csrf",
        response_model=CsrfOut,
        summary="A CSRF token for this sign-in (or for a sign-in form)",
        responses=_errors(400, 503),
    )
    async def csrf(request: Request) -> Response:
        if vr.bearer.read(request) is not None:
            raise InvalidInput("Requests with Authorization: Bearer need no CSRF token.")
        try:
            principal = await vr.authenticate_scope(request.scope)
        except NotAuthenticated:
            family = await vr.live_refresh_family(request)
            if family is not None:  # JWT cookies: the access token expired, renew with this
                return JSONResponse({"csrf_token": vr.csrf.token_for_family(family)})
            presession = vr.csrf.presession(request)
            response = JSONResponse({"csrf_token": presession.token})
            vr.csrf.remember(response, presession)
            return response
        return JSONResponse({"csrf_token": vr.csrf.token_for(principal)})

    @router.get("/me", response_model=MeOut, summary="Who am I", responses=_errors(401))
    async def me(principal: Current) -> JSONResponse:
        user = await service.user_of(principal)
        if principal.session is not None:
            created, expires = (
                principal.session.created_at,
                service.sessions.deadline(principal.session),
            )
        else:
            assert principal.token is not None  # noqa: S101 - bearer principals carry claims
            family = await service.tokens.refresh.get(principal.handle)
            created = family.created_at if family else principal.token.issued_at
            expires = principal.token.expires_at
        body = MeOut(
            id=user.id,
            email=user.email,
            session=CurrentSessionOut(
                id=principal.handle, created_at=iso(created), expires_at=iso(expires)
            ),
        )
        return JSONResponse(body.model_dump())

    @router.get(
        "/sessions",
        response_model=list[SessionOut],
        summary="My sessions and token families (devices)",
        responses=_errors(401),
    )
    async def sessions(principal: Current) -> JSONResponse:
        return JSONResponse([d.model_dump() for d in await vr.devices(principal)])

    @router.delete(
        "/sessions/{handle}",
        status_code=204,
        summary="Sign one device out",
        responses=_errors(401, 403, 404),
    )
    async def end_session(handle: str, principal: Current) -> Response:
        current = await service.end_session(principal, handle)
        response = Response(status_code=204)
        return signed_out(response) if current and principal.method != "bearer" else response

    @router.post(
        "/logout",
        status_code=204,
        summary="Sign out this device (session cookie or bearer token family)",
        responses=_errors(401),
    )
    async def logout(request: Request) -> Response:
        if vr.bearer.read(request) is not None:
            await service.logout(await vr.principal(request))  # 401 if the token is invalid
            return Response(status_code=204)
        await vr.browser_logout(request)
        return signed_out(Response(status_code=204))

    @router.post(
        "/logout-all",
        status_code=204,
        summary="Sign out every device, this one included",
        responses=_errors(401, 403),
    )
    async def logout_all(principal: Current) -> Response:
        await service.end_all_sessions(principal)
        response = Response(status_code=204)
        return signed_out(response) if principal.method != "bearer" else response

    @router.post(
        "/reauth",
        response_model=LoginOut,
        summary="Confirm the password; renews the session",
        openapi_extra=form_or_json_schema(PasswordProof),
        responses=_errors(401, 415, 422, 429),
    )
    async def reauth(request: Request, principal: Current) -> Response:
        body = await read_body(request, PasswordProof)
        if principal.method == "jwt-cookie":  # a fresh sign-in: a new family, fresh proof
            user = await service.user_of(principal)
            return signed_in(await vr.browser_login(request, user.email, body.password))
        ip, _ = _client(request)
        sign_in = await service.reauthenticate(principal, session_id(request), body.password, ip=ip)
        return signed_in(vr.signed_in(sign_in))

    @router.post(
        "/password",
        status_code=204,
        summary="Change the password; signs every other device out",
        openapi_extra=form_or_json_schema(PasswordChange),
        responses=_errors(401, 415, 422, 429),
    )
    async def change_password(request: Request, principal: Current) -> Response:
        body = await read_body(request, PasswordChange)
        ip, _ = _client(request)
        secret = transport.read(request) if principal.session else None
        sign_in = await service.change_password(
            principal, secret, body.current_password, body.new_password, ip=ip
        )
        response = Response(status_code=204)
        if sign_in is None:
            return signed_out(response) if principal.method == "jwt-cookie" else response
        return vr.signed_in(sign_in).apply(response)

    if vr.jwt_cookies:

        @router.post(
            "/refresh",
            response_model=LoginOut,
            summary="JWT-in-cookie mode: new access and refresh cookies",
            responses=_errors(401, 403),
        )
        async def refresh(request: Request) -> Response:
            family = await vr.live_refresh_family(request)
            if family is None:
                raise NotAuthenticated
            vr.csrf.check_family(request.scope, family, await form_token(request))
            principal, pair = await vr.refresh_browser(request)
            user = await service.user_of(principal)
            body = {
                "user": UserOut.of(user).model_dump(),
                "csrf_token": vr.csrf.token_for(principal),
            }
            response = JSONResponse(body)
            for cookie, value, max_age in vr.pair_cookies(pair):
                cookie.write(response, value, max_age=max_age)
            return response

    return router
