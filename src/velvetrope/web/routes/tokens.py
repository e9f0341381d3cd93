"""The OAuth 2.0 token endpoint (RFC 6749 §5), revocation (RFC 7009) and the JWKS.

With a ``DPoP`` proof header (RFC 9449 section 5, unless ``VELVETROPE_DPOP=off``) the
issued access token is bound to the proof's key (``cnf.jkt``, ``token_type: DPoP``) and
so is the refresh family (one opened without a proof is bound by its first refresh with
one): a refresh grant then needs a proof by the same key. Under ``require`` a request
without a proof is refused (``invalid_dpop_proof``); a refused proof's ``error_description``
says which check failed; with nonces on, a proof without the current one gets
``use_dpop_nonce`` and the ``DPoP-Nonce`` to use.
"""

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from velvetrope.core.tokens.service import TokenPair
from velvetrope.errors import (
    AccountDisabled,
    DPoPNonceRequired,
    DPoPProofRefused,
    InvalidCredentials,
    InvalidGrant,
    InvalidInput,
    InvalidToken,
    OAuthError,
    StoreUnavailable,
    TooManyAttempts,
    UnsupportedGrantType,
    UseDPoPNonce,
)
from velvetrope.web.bodies import RevokeRequest, TokenRequest, form_or_json_schema, read_body
from velvetrope.web.client import client_of
from velvetrope.web.context import Ctx, WebContext
from velvetrope.web.errors import PayloadTooLarge, UnsupportedMediaType
from velvetrope.web.openapi import BODY, answers
from velvetrope.web.routes.auth import same_origin
from velvetrope.web.schemas import TokenOut
from velvetrope.web.transports import request_htu

__all__ = ["build_token_router"]

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _token_response(pair: TokenPair, jkt: str | None) -> JSONResponse:
    body = TokenOut(
        access_token=pair.access_token,
        token_type="DPoP" if jkt else "Bearer",
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
    )
    return JSONResponse(body.model_dump(), headers=_NO_STORE)


routes = APIRouter(tags=["tokens"], dependencies=[Depends(same_origin)])


async def _dpop_key(request: Request, ctx: WebContext) -> str | None:
    """The thumbprint of the key of the request's DPoP proof, once checked; ``None`` when
    there is none (or DPoP is off).

    Raises:
        DPoPProofRefused: More than one proof, a bad one, or none where DPoP is required;
            its ``detail`` says which check failed.
        DPoPNonceRequired: The proof lacks the server's current nonce.
    """
    proofs = ctx.service.dpop
    if not proofs.policy.enabled:
        return None
    sent = request.headers.getlist("dpop")
    if len(sent) > 1:
        raise DPoPProofRefused.for_reason("one DPoP header needed")
    if not sent:
        if proofs.policy.mode == "require":
            raise DPoPProofRefused.for_reason("proof required")
        return None
    htu = request_htu(request.scope, ctx.settings.origin)
    try:
        verified = await proofs.verify(sent[0], htm=request.method, htu=htu)
    except UseDPoPNonce as exc:
        raise DPoPNonceRequired(exc.nonce) from None
    except InvalidToken as exc:  # the check that failed, in a fixed sentence (DPOP-12)
        raise DPoPProofRefused.for_reason(exc.reason) from None
    return verified.jkt


@routes.post(
    "/auth/token",
    response_model=TokenOut,
    summary="Get tokens: grant_type=password or grant_type=refresh_token",
    openapi_extra=form_or_json_schema(TokenRequest),
    responses=answers(
        UnsupportedMediaType,
        PayloadTooLarge,
        OAuthError,
        UnsupportedGrantType,
        InvalidGrant,
        DPoPProofRefused,
        DPoPNonceRequired,
        TooManyAttempts,
        StoreUnavailable,
    ),
)
async def token(request: Request, ctx: Ctx) -> Response:
    try:
        body = await read_body(request, TokenRequest)
    except (UnsupportedMediaType, PayloadTooLarge):
        raise
    except InvalidInput as exc:
        raise OAuthError(exc.detail) from None  # RFC 6749 §5.2: 400 invalid_request
    if body.grant_type not in ("password", "refresh_token"):
        raise UnsupportedGrantType
    jkt = await _dpop_key(request, ctx)
    if body.grant_type == "password":
        if body.username is None or body.password is None:
            raise OAuthError("grant_type=password needs username and password.")
        client = client_of(request)
        try:
            pair = await ctx.service.token_login(
                body.username, body.password, ip=client.ip, user_agent=client.user_agent, jkt=jkt
            )
        except (InvalidCredentials, AccountDisabled):
            raise InvalidGrant("The username or password is incorrect.") from None
        return _token_response(pair, jkt)
    if body.refresh_token is None:
        raise OAuthError("grant_type=refresh_token needs refresh_token.")
    return _token_response(await ctx.service.refresh_grant(body.refresh_token, jkt=jkt), jkt)


@routes.post(
    "/auth/revoke",
    status_code=200,
    summary="Revoke a refresh or access token (RFC 7009)",
    openapi_extra=form_or_json_schema(RevokeRequest),
    response_class=Response,
    responses=answers(*BODY, StoreUnavailable)
    | {200: {"description": "Revoked, or not a token of ours (RFC 7009 section 2.2): no body"}},
)
async def revoke(request: Request, ctx: Ctx) -> Response:
    body = await read_body(request, RevokeRequest)
    await ctx.service.revoke_token(body.token)
    return Response(status_code=200, headers=_NO_STORE)


@routes.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def jwks(ctx: Ctx) -> JSONResponse:
    return JSONResponse(
        await ctx.service.published_jwks(), headers={"Cache-Control": "public, max-age=300"}
    )


def build_token_router(ctx: WebContext) -> APIRouter:
    """The token endpoint, revocation and the JWKS, bound to ``ctx``."""
    router = APIRouter(dependencies=[Depends(ctx.bind)])
    router.include_router(routes)
    return router
