"""The account page's forms for the account itself: the password and the address.

::

    POST /account/password        change the password (current + new); other devices signed out
    POST /account/email/verify    mail me a new verification link

Both check where they come from and their ``csrf_token`` first, like every form of
the account page. A refused password change shows its form again with the reason.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from velvetrope.core.principal import Principal
from velvetrope.errors import AccountDisabled, InvalidCredentials, InvalidInput, TooManyAttempts
from velvetrope.web.bodies import PasswordChange, read_body
from velvetrope.web.browser import PageAuth
from velvetrope.web.client import client_of
from velvetrope.web.context import Ctx, WebContext
from velvetrope.web.pages.account import _signed_in_post as signed_in_post
from velvetrope.web.pages.render import PageRoute, failure, redirect, render, to_signin

__all__ = ["routes"]

routes = APIRouter(route_class=PageRoute, include_in_schema=False)


def _password_form(
    request: Request, ctx: WebContext, auth: PageAuth, principal: Principal, **context: Any
) -> Response:
    page = render(
        request,
        "password.html",
        signed_in=True,
        csrf_token=ctx.csrf.token_for(principal),
        min_length=ctx.settings.password_min_length,
        **context,
    )
    return auth.apply(page)


@routes.post("/account/password")
async def change_password(request: Request, ctx: Ctx) -> Response:
    auth = await signed_in_post(request, ctx)
    assert auth.principal is not None  # noqa: S101 - signed_in_post refuses nobody
    principal = auth.principal
    try:
        body = await read_body(request, PasswordChange)
        secret = ctx.cookies.session.read(request) if principal.session else None
        sign_in = await ctx.change_password(principal, secret, body, ip=client_of(request).ip)
    except (InvalidInput, InvalidCredentials, TooManyAttempts, AccountDisabled) as exc:
        return _password_form(request, ctx, auth, principal, **failure(exc))
    if sign_in is None:  # JWT cookies: every token ended, this browser's too
        return ctx.browser.sign_out(to_signin(request, "password-changed-signin"))
    return ctx.browser.signed_in(sign_in).apply(
        redirect(request, "/account?notice=password-changed")
    )


@routes.post("/account/email/verify")
async def resend_verification(request: Request, ctx: Ctx) -> Response:
    auth = await signed_in_post(request, ctx)
    assert auth.principal is not None  # noqa: S101 - signed_in_post refuses nobody
    user = await ctx.service.user_of(auth.principal)
    sent = await ctx.service.send_verification(user, wait=True)
    notice = "verification-sent" if sent else "already-verified"
    return auth.apply(redirect(request, f"/account?notice={notice}"))
