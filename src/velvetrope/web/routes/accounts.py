"""``/auth/password/*`` and ``/auth/email/*``: reset a forgotten password, verify the address.

::

    POST /auth/password/forgot        {"email"}                202, the same for every address
    POST /auth/password/reset         {"token", "new_password"} 204; every device signed out
    POST /auth/email/verify           {"token"}                 200 {"id","email","email_verified"}
    POST /auth/email/verify/resend    (signed in)               202 sent, 200 already verified

The first three need no sign-in and no CSRF token (the secret link is the proof, or
nothing changes but a mail to the address's owner); a form post of them must carry
the pre-session pair, as sign-in forms do, and every one passes the origin check.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from velvetrope.errors import (
    CsrfFailed,
    HashingBusy,
    InvalidEmail,
    InvalidLink,
    MailUnavailable,
    StoreUnavailable,
    TooManyAttempts,
    WeakPassword,
)
from velvetrope.web.bodies import Email, Password, Text, form_or_json_schema, read_body
from velvetrope.web.client import client_of
from velvetrope.web.context import Ctx, WebContext
from velvetrope.web.openapi import AUTHENTICATED, BODY, SIGNED_IN, answers
from velvetrope.web.routes.auth import Current, same_origin
from velvetrope.web.routes.auth import (
    _check_form_csrf as check_form_csrf,  # the sign-in forms' pre-session pair
)

__all__ = ["FORGOT_ANSWER", "build_accounts_router"]

FORGOT_ANSWER = (
    "If an account uses this address, a link to reset its password is on its way; "
    "it works once, for a short time."
)

routes = APIRouter(prefix="/auth", tags=["account lifecycle"], dependencies=[Depends(same_origin)])

Token = Annotated[Text, Field(min_length=1, max_length=256)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ForgotPassword(_Body):
    """The address whose password is forgotten."""

    email: Email


class ResetPassword(_Body):
    """The secret from the reset link, and the new password."""

    token: Token
    new_password: Password


class VerifyEmail(_Body):
    """The secret from the verification link."""

    token: Token


class AcceptedOut(BaseModel):
    """A request taken; what happens next is said in ``detail``."""

    status: str = Field(examples=["accepted"])
    detail: str


class VerifiedOut(BaseModel):
    """The account whose address is verified."""

    id: str
    email: str
    email_verified: bool


@routes.post(
    "/password/forgot",
    status_code=202,
    response_model=AcceptedOut,
    summary="Mail a password reset link (the same answer whether or not the account exists)",
    openapi_extra=form_or_json_schema(ForgotPassword),
    responses=answers(*BODY, InvalidEmail, CsrfFailed, MailUnavailable, StoreUnavailable),
)
async def forgot_password(request: Request, ctx: Ctx) -> JSONResponse:
    body = await read_body(request, ForgotPassword)
    await check_form_csrf(request, ctx)
    await ctx.service.request_password_reset(body.email, ip=client_of(request).ip)
    return JSONResponse({"status": "accepted", "detail": FORGOT_ANSWER}, status_code=202)


@routes.post(
    "/password/reset",
    status_code=204,
    summary="Set a new password with the link's token; signs every device out",
    openapi_extra=form_or_json_schema(ResetPassword),
    responses=answers(
        *BODY, InvalidLink, WeakPassword, CsrfFailed, HashingBusy, TooManyAttempts, StoreUnavailable
    ),
)
async def reset_password(request: Request, ctx: Ctx) -> Response:
    body = await read_body(request, ResetPassword)
    await check_form_csrf(request, ctx)
    await ctx.reset_password(body.token, body.new_password, ip=client_of(request).ip)
    return Response(status_code=204)


@routes.post(
    "/email/verify",
    response_model=VerifiedOut,
    summary="Verify the address with the link's token",
    openapi_extra=form_or_json_schema(VerifyEmail),
    responses=answers(*BODY, InvalidLink, CsrfFailed, StoreUnavailable),
)
async def verify_email(request: Request, ctx: Ctx) -> JSONResponse:
    body = await read_body(request, VerifyEmail)
    await check_form_csrf(request, ctx)
    user = await ctx.service.verify_email(body.token)
    out = VerifiedOut(id=user.id, email=user.email, email_verified=True)
    return JSONResponse(out.model_dump())


@routes.post(
    "/email/verify/resend",
    response_model=AcceptedOut,
    status_code=202,
    summary="Mail me a new verification link",
    responses={
        200: {
            "model": AcceptedOut,
            "description": "The address is verified already; nothing was sent",
        },
        **answers(*AUTHENTICATED, TooManyAttempts, MailUnavailable),
    },
    openapi_extra=SIGNED_IN,
)
async def resend_verification(principal: Current, ctx: Ctx) -> JSONResponse:
    user = await ctx.service.user_of(principal)
    if not await ctx.service.send_verification(user, wait=True):
        detail = "Your address is already verified."
        return JSONResponse({"status": "already_verified", "detail": detail})
    detail = f"A verification link is on its way to {user.email}."
    return JSONResponse({"status": "sent", "detail": detail}, status_code=202)


def build_accounts_router(ctx: WebContext) -> APIRouter:
    """The password-reset and verification routes bound to ``ctx``."""
    router = APIRouter(dependencies=[Depends(ctx.bind)])
    router.include_router(routes)
    return router
