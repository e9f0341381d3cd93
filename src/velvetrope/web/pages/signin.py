"""The pages before sign-in: ``/`` (where to go), ``/signin`` and ``/signup``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from velvetrope.errors import (
    AccountDisabled,
    EmailTaken,
    InvalidCredentials,
    InvalidInput,
    TooManyAttempts,
)
from velvetrope.web.bodies import Credentials, SignInCredentials, read_body
from velvetrope.web.client import client_of
from velvetrope.web.context import Ctx
from velvetrope.web.csrf import form_token
from velvetrope.web.pages.render import (
    PageRoute,
    credential_form,
    failure,
    notice_of,
    redirect,
)

__all__ = ["routes"]

routes = APIRouter(route_class=PageRoute, include_in_schema=False)


@routes.get("/")
async def home(request: Request, ctx: Ctx) -> Response:
    auth = await ctx.browser.page_principal(request)
    target = "/account" if auth.principal is not None else "/signin"
    return auth.apply(redirect(request, target))


@routes.get("/signin")
async def signin_page(request: Request, ctx: Ctx) -> Response:
    auth = await ctx.browser.page_principal(request)
    if auth.principal is not None:
        return auth.apply(redirect(request, "/account"))
    return credential_form(request, ctx, "signin.html", notice=notice_of(request))


@routes.post("/signin")
async def signin(request: Request, ctx: Ctx) -> Response:
    ctx.csrf.check_presession(request, await form_token(request))
    email = ""
    try:
        body = await read_body(request, SignInCredentials)
        email = body.email
        remember = body.remember is True  # an unchecked box sends nothing
        sign_in = await ctx.browser.login(request, body.email, body.password, remember=remember)
    except (InvalidInput, InvalidCredentials, TooManyAttempts, AccountDisabled) as exc:
        return credential_form(request, ctx, "signin.html", email=email, **failure(exc))
    return sign_in.apply(redirect(request, "/account"))


@routes.get("/signup")
async def signup_page(request: Request, ctx: Ctx) -> Response:
    auth = await ctx.browser.page_principal(request)
    if auth.principal is not None:
        return auth.apply(redirect(request, "/account"))
    min_length = ctx.settings.password_min_length
    return credential_form(request, ctx, "signup.html", min_length=min_length)


@routes.post("/signup")
async def signup(request: Request, ctx: Ctx) -> Response:
    ctx.csrf.check_presession(request, await form_token(request))
    email = ""
    context = {"min_length": ctx.settings.password_min_length}
    try:
        body = await read_body(request, Credentials)
        email = body.email
        user = await ctx.service.register(body.email, body.password, ip=client_of(request).ip)
    except (InvalidInput, EmailTaken, TooManyAttempts) as exc:
        return credential_form(request, ctx, "signup.html", email=email, **context, **failure(exc))
    await ctx.service.welcome(user)  # a verification link, when mail can be sent
    try:
        sign_in = await ctx.browser.login(request, body.email, body.password)
    except (InvalidCredentials, TooManyAttempts, AccountDisabled) as exc:
        return credential_form(request, ctx, "signin.html", email=email, **failure(exc))
    return sign_in.apply(redirect(request, "/account"))
