"""The account page: who you are, your devices, and signing them out.

::

    GET  /account                            who you are, your devices
    POST /account/signout                    sign this device out
    POST /account/signout-all                sign out everywhere (needs a recent sign-in)
    POST /account/devices/{handle}/signout   sign one device out (another: recent sign-in)

Every POST checks where it comes from and its ``csrf_token`` field first. An action
that needs a recent sign-in answers with a password form that posts to the same
action again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from velvetrope.core.principal import Principal
from velvetrope.core.security_log import SIGN_INS
from velvetrope.errors import (
    AccountDisabled,
    CsrfFailed,
    InvalidCredentials,
    InvalidInput,
    NotAuthenticated,
    ReauthRequired,
    SessionNotFound,
    TooManyAttempts,
)
from velvetrope.stores.records import UserRecord
from velvetrope.web.bodies import Text, read_body
from velvetrope.web.browser import BrowserSignIn, PageAuth
from velvetrope.web.context import Ctx, WebContext
from velvetrope.web.csrf import form_token
from velvetrope.web.devices import DeviceView, describe_user_agent, device_view, when
from velvetrope.web.pages.render import PageRoute, failure, notice_of, redirect, render, to_signin
from velvetrope.web.schemas import iso

__all__ = ["routes"]

SIGNED_OUT = frozenset({"signed-out", "signed-out-everywhere"})

routes = APIRouter(route_class=PageRoute, include_in_schema=False)


class _Confirmation(BaseModel):
    """A signed-in form: its password field is there only when confirming a sign-in."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    password: Annotated[Text, Field(min_length=1, max_length=4096)] | None = None


async def _signed_in_post(request: Request, ctx: WebContext) -> PageAuth:
    """The live sign-in behind a POST from one of our signed-in pages, CSRF-checked."""
    # Where from, before a JWT-cookie page load renews (rotates) anything.
    reason = ctx.csrf.policy.refusal(request.scope, carries_cookie=True)
    if reason is not None:
        raise CsrfFailed(reason)
    auth = await ctx.browser.page_principal(request)
    if auth.principal is None:
        raise NotAuthenticated
    ctx.csrf.check(request.scope, auth.principal, await form_token(request))
    return auth


async def _devices(ctx: WebContext, principal: Principal) -> list[DeviceView]:
    now = ctx.service.now()
    views = sorted(
        (device_view(d, now) for d in await ctx.devices(principal)),
        key=lambda d: d.last_seen_iso,
    )
    return sorted(reversed(views), key=lambda d: not d.current)  # this one, then by recency


def _signed_in_with(ctx: WebContext, principal: Principal) -> str:
    """How the principal signed in, as its backend describes it (else the backend's name)."""
    backend = ctx.authenticator.backend_of(principal)
    return backend.description if backend is not None and backend.description else principal.method


RECENT_SIGN_INS = 10


async def _recent_sign_ins(ctx: WebContext, user: UserRecord) -> list[dict[str, str]]:
    """The user's latest sign-ins from the security log: when, from where, on what."""
    found = await ctx.service.security_events(user, limit=RECENT_SIGN_INS, events=SIGN_INS)
    return [
        {
            "when": when(e.at),
            "iso": iso(e.at),
            "ip": e.ip or "unknown",
            "device": describe_user_agent(e.user_agent),
            "user_agent": e.user_agent,
        }
        for e in found
    ]


@routes.get("/account")
async def account(request: Request, ctx: Ctx) -> Response:
    auth = await ctx.browser.page_principal(request)
    principal = auth.principal
    if principal is None:
        if ctx.browser.carries_credential(request):
            return ctx.browser.sign_out(to_signin(request, "expired"))
        return to_signin(request)
    user = await ctx.service.user_of(principal)
    page = render(
        request,
        "account.html",
        signed_in=True,
        user=user,
        member_since=when(user.created_at),
        credentials=_signed_in_with(ctx, principal),
        bound=principal.session is not None and principal.session.device_key is not None,
        devices=await _devices(ctx, principal),
        sign_ins=await _recent_sign_ins(ctx, user),
        csrf_token=ctx.csrf.token_for(principal),
        notice=notice_of(request),
    )
    return auth.apply(page)


@routes.post("/account/signout")
async def signout(request: Request, ctx: Ctx) -> Response:
    await ctx.browser.logout(request)
    return ctx.browser.sign_out(to_signin(request, "signed-out"))


Action = Callable[[Principal], Awaitable[str]]


async def _sensitive(
    request: Request, ctx: WebContext, path: str, label: str, run: Action
) -> Response:
    """Run an action that may need a recent sign-in; ask for the password if so.

    ``run`` returns the notice to show; one of :data:`SIGNED_OUT` means this device
    is signed out too, and the browser goes to the sign-in page. The password form
    posts to ``path`` again, with the password.
    """
    auth = await _signed_in_post(request, ctx)
    cookies: PageAuth | BrowserSignIn = auth
    assert auth.principal is not None  # noqa: S101 - _signed_in_post refuses nobody
    principal: Principal = auth.principal

    def confirm(status: int, **extra: Any) -> Response:
        form = render(
            request,
            "confirm.html",
            status=status,
            signed_in=True,
            action=path,
            action_label=label,
            csrf_token=ctx.csrf.token_for(principal),
            **extra,
        )
        return cookies.apply(form)

    try:
        body = await read_body(request, _Confirmation)
    except InvalidInput as exc:
        return confirm(**failure(exc))
    if body.password is not None:
        try:
            renewed = await ctx.browser.reauthenticate(request, principal, body.password)
        except (InvalidCredentials, TooManyAttempts, AccountDisabled) as exc:
            return confirm(**failure(exc))
        cookies, principal = renewed, renewed.principal
    try:
        notice = await run(principal)
    except ReauthRequired:
        return confirm(403)
    if notice in SIGNED_OUT:
        return ctx.browser.sign_out(to_signin(request, notice))
    return cookies.apply(redirect(request, f"/account?notice={notice}"))


@routes.post("/account/signout-all")
async def signout_all(request: Request, ctx: Ctx) -> Response:
    async def run(principal: Principal) -> str:
        await ctx.sign_out_everywhere(principal)
        return "signed-out-everywhere"

    return await _sensitive(request, ctx, "/account/signout-all", "Sign out everywhere", run)


@routes.post("/account/devices/{handle}/signout")
async def signout_device(request: Request, handle: str, ctx: Ctx) -> Response:
    async def run(principal: Principal) -> str:
        try:
            current = await ctx.end_device(principal, handle)
        except SessionNotFound:
            return "device-gone"
        return "signed-out" if current else "device-signed-out"

    path = f"/account/devices/{quote(handle, safe='')}/signout"
    return await _sensitive(request, ctx, path, "Sign that device out", run)
