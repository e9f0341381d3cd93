"""The OAuth 2.0 token endpoint (RFC 6749 §5), revocation (RFC 7009) and the JWKS."""

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from velvetrope.core.tokens.service import TokenPair
from velvetrope.errors import (
    AccountDisabled,
    InvalidCredentials,
    InvalidGrant,
    InvalidInput,
    OAuthError,
    UnsupportedGrantType,
)
from velvetrope.web.bodies import RevokeRequest, TokenRequest, form_or_json_schema, read_body
from velvetrope.web.client import client_of
from velvetrope.web.context import Ctx, WebContext
from velvetrope.web.errors import UnsupportedMediaType
from velvetrope.web.routes.auth import same_origin
from velvetrope.web.schemas import ErrorOut, TokenOut

__all__ = ["build_token_router"]

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _token_response(pair: TokenPair) -> JSONResponse:
    body = TokenOut(
        access_token=pair.access_token,
        token_type="Bearer",  # noqa: S106 - the RFC 6750 scheme name
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
    )
    return JSONResponse(body.model_dump(), headers=_NO_STORE)


routes = APIRouter(tags=["tokens"], dependencies=[Depends(same_origin)])


@routes.post(
    "/auth/token",
    response_model=TokenOut,
    summary="Get tokens: grant_type=password or grant_type=refresh_token",
    openapi_extra=form_or_json_schema(TokenRequest),
    responses={400: {"model": ErrorOut}, 429: {"model": ErrorOut}},
)
async def token(request: Request, ctx: Ctx) -> Response:
    try:
        body = await read_body(request, TokenRequest)
    except UnsupportedMediaType:
        raise
    except InvalidInput as exc:
        raise OAuthError(exc.detail) from None  # RFC 6749 §5.2: 400 invalid_request
    if body.grant_type == "password":
        if body.username is None or body.password is None:
            raise OAuthError("grant_type=password needs username and password.")
        client = client_of(request)
        try:
            pair = await ctx.service.token_login(
                body.username, body.password, ip=client.ip, user_agent=client.user_agent
            )
        except (InvalidCredentials, AccountDisabled):
            raise InvalidGrant("The username or password is incorrect.") from None
        return _token_response(pair)
    if body.grant_type == "refresh_token":
        if body.refresh_token is None:
            raise OAuthError("grant_type=refresh_token needs refresh_token.")
        return _token_response(await ctx.service.refresh_grant(body.refresh_token))
    raise UnsupportedGrantType


@routes.post(
    "/auth/revoke",
    status_code=200,
    summary="Revoke a refresh or access token (RFC 7009)",
    openapi_extra=form_or_json_schema(RevokeRequest),
)
async def revoke(request: Request, ctx: Ctx) -> Response:
    body = await read_body(request, RevokeRequest)
    await ctx.service.revoke_token(body.token)
    return Response(status_code=200, headers=_NO_STORE)


@routes.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def jwks(ctx: Ctx) -> JSONResponse:
    return JSONResponse(ctx.service.jwks(), headers={"Cache-Control": "public, max-age=300"})


def build_token_router(ctx: WebContext) -> APIRouter:
    """The token endpoint, revocation and the JWKS, bound to ``ctx``."""
    router = APIRouter(dependencies=[Depends(ctx.bind)])
    router.include_router(routes)
    return router
