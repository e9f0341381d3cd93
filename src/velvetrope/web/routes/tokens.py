"""The OAuth 2.0 token endpoint (RFC 6749 §5), revocation (RFC 7009) and the JWKS."""

from typing import TYPE_CHECKING

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
from velvetrope.web.errors import UnsupportedMediaType
from velvetrope.web.routes.auth import same_origin_dependency
from velvetrope.web.schemas import ErrorOut, TokenOut

if TYPE_CHECKING:
    from velvetrope.web.extension import Velvetrope

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


def build_token_router(vr: "Velvetrope") -> APIRouter:
    """Return the token routes bound to ``vr``."""
    router = APIRouter(tags=["tokens"], dependencies=[Depends(same_origin_dependency(vr))])
    service = vr.service

    @router.post(
        "/auth/token",
        response_model=TokenOut,
        summary="Get tokens: grant_type=password or grant_type=refresh_token",
        openapi_extra=form_or_json_schema(TokenRequest),
        responses={400: {"model": ErrorOut}, 429: {"model": ErrorOut}},
    )
    async def token(request: Request) -> Response:
        try:
            body = await read_body(request, TokenRequest)
        except UnsupportedMediaType:
            raise
        except InvalidInput as exc:
            raise OAuthError(exc.detail) from None  # RFC 6749 §5.2: 400 invalid_request
        ip = request.client.host if request.client else ""
        if body.grant_type == "password":
            if body.username is None or body.password is None:
                raise OAuthError("grant_type=password needs username and password.")
            try:
                pair = await service.token_login(
                    body.username,
                    body.password,
                    ip=ip,
                    user_agent=request.headers.get("user-agent", ""),
                )
            except (InvalidCredentials, AccountDisabled):
                raise InvalidGrant("The username or password is incorrect.") from None
            return _token_response(pair)
        if body.grant_type == "refresh_token":
            if body.refresh_token is None:
                raise OAuthError("grant_type=refresh_token needs refresh_token.")
            return _token_response(await service.tokens.refresh_grant(body.refresh_token))
        raise UnsupportedGrantType

    @router.post(
        "/auth/revoke",
        status_code=200,
        summary="Revoke a refresh or access token (RFC 7009)",
        openapi_extra=form_or_json_schema(RevokeRequest),
    )
    async def revoke(request: Request) -> Response:
        body = await read_body(request, RevokeRequest)
        await service.tokens.revoke_token(body.token)
        return Response(status_code=200, headers=_NO_STORE)

    @router.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
    async def jwks() -> JSONResponse:
        return JSONResponse(
            service.tokens.keys.jwks(),
            headers={"Cache-Control": "public, max-age=300"},
        )

    return router
