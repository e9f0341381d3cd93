"""The pages reached from a mailed link, or on the way to one: forgot, reset, verify.

::

    GET  /password/forgot            the form: your address (a pre-session CSRF token)
    POST /password/forgot            "check your inbox", the same for every address
    GET  /password/reset?token=...   the form: a new password (the link is not spent yet)
    POST /password/reset             303 to /signin: every device is signed out
    GET  /email/verify?token=...     a button that confirms the address
    POST /email/verify               "your address is verified"

Opening a link never spends it: mail scanners and link previews fetch links, so only
the form's POST (with the pre-session pair, like sign-in forms) uses the secret. The
token travels in the query string of the mailed link and then in a hidden field; the
pages send ``Referrer-Policy: no-referrer`` and load nothing from elsewhere, so it
goes nowhere else.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from velvetrope.core.ids import is_well_formed_secret
from velvetrope.errors import InvalidInput, InvalidLink
from velvetrope.web.bodies import read_body
from velvetrope.web.client import client_of
from velvetrope.web.context import Ctx, WebContext
from velvetrope.web.csrf import form_token
from velvetrope.web.pages.render import PageRoute, credential_form, failure, render, to_signin
from velvetrope.web.routes.accounts import (
    FORGOT_ANSWER,
    ForgotPassword,
    ResetPassword,
    VerifyEmail,
)

__all__ = ["routes"]

routes = APIRouter(route_class=PageRoute, include_in_schema=False)

BAD_LINK = (
    "This link is not valid: it was already used, it has expired, or it was copied "
    "incompletely. Links work once, for a short time."
)


def _bad_link(request: Request, *, retry: str, retry_label: str) -> Response:
    return render(
        request,
        "done.html",
        status=400,
        title="This link does not work",
        message=BAD_LINK,
        target=retry,
        target_label=retry_label,
    )


def _token_of(request: Request) -> str | None:
    token = request.query_params.get("token", "")
    return token if is_well_formed_secret(token) else None


async def _submitted_token(request: Request) -> str | None:
    """The well-formed ``token`` field of a posted form, to show the form again."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        return None
    try:
        fields = dict(parse_qsl((await request.body()).decode("utf-8"), max_num_fields=16))
    except ValueError:
        return None
    value = fields.get("token", "")
    return value if is_well_formed_secret(value) else None


def _reset_form(request: Request, ctx: WebContext, token: str, **context: Any) -> Response:
    minimum = ctx.settings.password_min_length
    return credential_form(request, ctx, "reset.html", token=token, min_length=minimum, **context)


@routes.get("/password/forgot")
async def forgot_page(request: Request, ctx: Ctx) -> Response:
    return credential_form(request, ctx, "forgot.html")


@routes.post("/password/forgot")
async def forgot(request: Request, ctx: Ctx) -> Response:
    ctx.csrf.check_presession(request, await form_token(request))
    email = ""
    try:
        body = await read_body(request, ForgotPassword)
        email = body.email
        await ctx.service.request_password_reset(email, ip=client_of(request).ip)
    except InvalidInput as exc:
        return credential_form(request, ctx, "forgot.html", email=email, **failure(exc))
    return render(
        request,
        "done.html",
        status=202,
        title="Check your inbox",
        message=FORGOT_ANSWER,
        target="/signin",
        target_label="Back to sign in",
    )


@routes.get("/password/reset")
async def reset_page(request: Request, ctx: Ctx) -> Response:
    token = _token_of(request)
    if token is None:
        return _bad_link(request, retry="/password/forgot", retry_label="Send a new link")
    return _reset_form(request, ctx, token)


@routes.post("/password/reset")
async def reset(request: Request, ctx: Ctx) -> Response:
    ctx.csrf.check_presession(request, await form_token(request))
    try:
        body = await read_body(request, ResetPassword)
        await ctx.reset_password(body.token, body.new_password, ip=client_of(request).ip)
    except InvalidLink:
        return _bad_link(request, retry="/password/forgot", retry_label="Send a new link")
    except InvalidInput as exc:  # a weak password: the link still works
        token = await _submitted_token(request)
        if token is None:
            return _bad_link(request, retry="/password/forgot", retry_label="Send a new link")
        return _reset_form(request, ctx, token, **failure(exc))
    # Every sign-in of the account ended; this browser forgets its cookies too.
    return ctx.browser.sign_out(to_signin(request, "password-reset"))


@routes.get("/email/verify")
async def verify_page(request: Request, ctx: Ctx) -> Response:
    token = _token_of(request)
    if token is None:
        return _bad_link(request, retry="/account", retry_label="Go to your account")
    return credential_form(request, ctx, "verify.html", token=token)


@routes.post("/email/verify")
async def verify(request: Request, ctx: Ctx) -> Response:
    ctx.csrf.check_presession(request, await form_token(request))
    try:
        body = await read_body(request, VerifyEmail)
        user = await ctx.service.verify_email(body.token)
    except (InvalidLink, InvalidInput):
        return _bad_link(request, retry="/account", retry_label="Go to your account")
    return render(
        request,
        "done.html",
        title="Address verified",
        message=f"Thank you: {user.email} is verified.",
        target="/account",
        target_label="Go to your account",
    )
