"""Browser pages: sign up, sign in, and the account page with its devices.

Server-rendered with Jinja2 (autoescaped), without a single script: the pages run
under ``default-src 'none'`` with no ``script-src`` (:data:`PAGE_CSP`), and every
credential stays in an HttpOnly cookie. They work for both browser credentials, the
session cookie and JWT-in-cookie (``VELVETROPE_BROWSER_CREDENTIALS``).

::

    GET  /                                   303 to /account or /signin
    GET  /signin, /signup                    the forms (a pre-session CSRF token)
    POST /signin, /signup                    303 to /account; the form again on errors
    GET  /account                            who you are, your devices
    POST /account/signout                    sign this device out
    POST /account/signout-all                sign out everywhere (needs a recent sign-in)
    POST /account/devices/{handle}/signout   sign one device out (another: recent sign-in)

Every POST checks where it comes from and its ``csrf_token`` field (checklist 1.8);
a refusal is a 403 page, a store outage a 503 page. An action that needs a recent
sign-in answers with a password form that posts to the same action again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from velvetrope.core.principal import Principal
from velvetrope.errors import (
    AccountDisabled,
    AuthError,
    CsrfFailed,
    EmailTaken,
    InvalidCredentials,
    InvalidInput,
    NotAuthenticated,
    ReauthRequired,
    SessionNotFound,
    StoreUnavailable,
    TooManyAttempts,
)
from velvetrope.web.bodies import Credentials, Text, read_body
from velvetrope.web.csrf import form_token
from velvetrope.web.devices import DeviceView, device_view, when
from velvetrope.web.errors import STATUS
from velvetrope.web.extension import BrowserSignIn, PageAuth

if TYPE_CHECKING:
    from velvetrope.web.extension import Velvetrope

__all__ = ["PAGE_CSP", "build_page_router", "static_files"]

_logger = logging.getLogger("velvetrope.web")
_HERE = Path(__file__).parent

PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
STATIC_CACHE = "public, max-age=3600"

# Notices are chosen by a fixed word in the query string: nothing a link carries is shown.
NOTICES = {
    "signed-out": "You have signed out.",
    "signed-out-everywhere": "You have signed out on every device.",
    "expired": "Your session has expired; sign in again.",
    "device-signed-out": "That device is signed out.",
    "device-gone": "That device was already signed out.",
}
SIGNED_OUT = frozenset({"signed-out", "signed-out-everywhere"})
CSRF_REFUSED = (
    "This form had expired or did not come from this site, so nothing was changed. "
    "Go back, reload the page and try again."
)
STORE_DOWN = (
    "The sign-in service cannot reach its store right now, so nothing was changed. "
    "Try again in a few seconds."
)

# ---------------------------------------------------------------- views


def _wait(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} second{'s' if seconds > 1 else ''}"
    return f"{(seconds + 59) // 60} minutes"


def _status(exc: AuthError) -> int:
    return next((status for cls, status, _ in STATUS if isinstance(exc, cls)), 400)


class _Confirmation(BaseModel):
    """A signed-in form: its password field is there only when confirming a sign-in."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    password: Annotated[Text, Field(min_length=1, max_length=4096)] | None = None


def static_files() -> StaticFiles:
    """The pages' stylesheet and icons, for ``app.mount("/static", ...)``."""
    return _Static(directory=_HERE / "static")


class _Static(StaticFiles):
    """Static files the browser may cache for an hour (they hold nothing personal)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = STATIC_CACHE
        return response


# ---------------------------------------------------------------- routes

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def build_page_router(vr: Velvetrope) -> APIRouter:  # noqa: PLR0915 - a closure per route
    """Return the browser pages bound to ``vr`` (mount the :func:`static_files` too)."""
    service = vr.service
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    credential_cookies = (
        (vr.access_cookie, vr.refresh_cookie) if vr.jwt_cookies else (vr.transport,)
    )

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def render(
        request: Request,
        template: str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        context = {"notice": None, "error": None, "hint": None, "signed_in": False, **context}
        html = env.get_template(template).render(root=root(request), **context)
        response = HTMLResponse(html, status_code=status, headers=headers)
        response.headers["Content-Security-Policy"] = PAGE_CSP
        return response

    def redirect(request: Request, path: str) -> Response:
        return RedirectResponse(root(request) + path, status_code=303)

    def to_signin(request: Request, notice: str | None = None) -> Response:
        return redirect(request, f"/signin?notice={notice}" if notice else "/signin")

    def notice_of(request: Request) -> str | None:
        return NOTICES.get(request.query_params.get("notice", ""))

    def failure(exc: AuthError) -> dict[str, Any]:
        """The status, message and headers of a form re-rendered for ``exc``."""
        headers = {}
        error, hint = exc.detail, None
        if isinstance(exc, TooManyAttempts):  # say exactly how long instead of "later"
            seconds = max(1, int(exc.retry_after.total_seconds() + 0.999))
            headers["Retry-After"] = str(seconds)
            error = re.sub(r"; try again later\.$", ".", error)
            hint = f"You can try again in {_wait(seconds)}."
        return {"status": _status(exc), "error": error, "hint": hint, "headers": headers}

    def credential_form(
        request: Request, template: str, *, email: str = "", **context: Any
    ) -> Response:
        presession = vr.csrf.presession(request)
        response = render(request, template, csrf_token=presession.token, email=email, **context)
        vr.csrf.remember(response, presession)
        return response

    class PageRoute(APIRoute):
        """Page errors are pages: CSRF refusals, outages and dead sign-ins never turn JSON."""

        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()
            back = "/account" if self.path.startswith("/account") else self.path

            async def page(request: Request) -> Response:
                try:
                    return await handler(request)
                except CsrfFailed:
                    return render(
                        request,
                        "error.html",
                        status=403,
                        title="Request refused",
                        message=CSRF_REFUSED,
                        back=back,
                    )
                except StoreUnavailable as exc:
                    _logger.error("store unavailable: %s", exc.detail)
                    return render(
                        request,
                        "error.html",
                        status=503,
                        headers={"Retry-After": "5"},
                        title="Try again shortly",
                        message=STORE_DOWN,
                        back=back,
                    )
                except NotAuthenticated:  # the sign-in ended (or the account went) meanwhile
                    return vr.sign_out(to_signin(request, "expired"))
                except AuthError as exc:  # anything else: still a page, never JSON
                    return render(
                        request,
                        "error.html",
                        status=_status(exc),
                        title="That did not work",
                        message=exc.detail,
                        back=back,
                    )

            return page

    router = APIRouter(route_class=PageRoute, include_in_schema=False)

    def carries_credential(request: Request) -> bool:
        # Not vr.carries_cookie: the sign-in form's CSRF cookie is no sign-in to expire.
        return any(cookie.read(request) is not None for cookie in credential_cookies)

    async def signed_in_post(request: Request) -> tuple[Principal, PageAuth]:
        """The live sign-in behind a POST from one of our signed-in pages, CSRF-checked."""
        # Where from, before a JWT-cookie page load renews (rotates) anything.
        reason = vr.csrf.policy.refusal(request.scope, carries_cookie=True)
        if reason is not None:
            raise CsrfFailed(reason)
        auth = await vr.page_principal(request)
        if auth.principal is None:
            raise NotAuthenticated
        vr.csrf.check(request.scope, auth.principal, await form_token(request))
        return auth.principal, auth

    async def reauthenticate(
        request: Request, principal: Principal, password: str
    ) -> BrowserSignIn:
        """Prove the password again (as ``POST /auth/reauth`` does, in either mode)."""
        if principal.session is not None:
            secret = vr.transport.read(request)
            if secret is None:
                raise NotAuthenticated
            ip = request.client.host if request.client else ""
            return vr.signed_in(await service.reauthenticate(principal, secret, password, ip=ip))
        user = await service.user_of(principal)  # a fresh sign-in: a new family
        return await vr.browser_login(request, user.email, password)

    async def devices(principal: Principal) -> list[DeviceView]:
        listed = await vr.devices(principal)
        now = service.now()
        views = sorted((device_view(out, now) for out in listed), key=lambda d: d.last_seen_iso)
        return sorted(reversed(views), key=lambda d: not d.current)  # this one, then by recency

    @router.get("/")
    async def home(request: Request) -> Response:
        auth = await vr.page_principal(request)
        target = "/account" if auth.principal is not None else "/signin"
        return auth.apply(redirect(request, target))

    @router.get("/signin")
    async def signin_page(request: Request) -> Response:
        auth = await vr.page_principal(request)
        if auth.principal is not None:
            return auth.apply(redirect(request, "/account"))
        return credential_form(request, "signin.html", notice=notice_of(request))

    @router.post("/signin")
    async def signin(request: Request) -> Response:
        vr.csrf.check_presession(request, await form_token(request))
        email = ""
        try:
            body = await read_body(request, Credentials)
            email = body.email
            sign_in = await vr.browser_login(request, body.email, body.password)
        except (InvalidInput, InvalidCredentials, TooManyAttempts, AccountDisabled) as exc:
            return credential_form(request, "signin.html", email=email, **failure(exc))
        return sign_in.apply(redirect(request, "/account"))

    @router.get("/signup")
    async def signup_page(request: Request) -> Response:
        auth = await vr.page_principal(request)
        if auth.principal is not None:
            return auth.apply(redirect(request, "/account"))
        return credential_form(request, "signup.html", min_length=vr.settings.password_min_length)

    @router.post("/signup")
    async def signup(request: Request) -> Response:
        vr.csrf.check_presession(request, await form_token(request))
        email = ""
        context = {"min_length": vr.settings.password_min_length}
        try:
            body = await read_body(request, Credentials)
            email = body.email
            ip = request.client.host if request.client else ""
            await service.register(body.email, body.password, ip=ip)
        except (InvalidInput, EmailTaken, TooManyAttempts) as exc:
            return credential_form(request, "signup.html", email=email, **context, **failure(exc))
        try:
            sign_in = await vr.browser_login(request, body.email, body.password)
        except (InvalidCredentials, TooManyAttempts, AccountDisabled) as exc:
            return credential_form(request, "signin.html", email=email, **failure(exc))
        return sign_in.apply(redirect(request, "/account"))

    @router.get("/account")
    async def account(request: Request) -> Response:
        auth = await vr.page_principal(request)
        principal = auth.principal
        if principal is None:
            if carries_credential(request):
                return vr.sign_out(to_signin(request, "expired"))
            return to_signin(request)
        user = await service.user_of(principal)
        page = render(
            request,
            "account.html",
            signed_in=True,
            user=user,
            member_since=when(user.created_at),
            credentials=principal.method,
            devices=await devices(principal),
            csrf_token=vr.csrf.token_for(principal),
            notice=notice_of(request),
        )
        return auth.apply(page)

    @router.post("/account/signout")
    async def signout(request: Request) -> Response:
        await vr.browser_logout(request)
        return vr.sign_out(to_signin(request, "signed-out"))

    async def sensitive(
        request: Request, path: str, label: str, run: Callable[[Principal], Awaitable[str]]
    ) -> Response:
        """Run an action that may need a recent sign-in; ask for the password if so.

        ``run`` returns the notice to show; one of :data:`SIGNED_OUT` means this
        device is signed out too, and the browser goes to the sign-in page. The
        password form posts to ``path`` again, with the password.
        """
        principal, auth = await signed_in_post(request)
        cookies: PageAuth | BrowserSignIn = auth

        def confirm(status: int, **extra: Any) -> Response:
            form = render(
                request,
                "confirm.html",
                status=status,
                signed_in=True,
                action=path,
                action_label=label,
                csrf_token=vr.csrf.token_for(principal),
                **extra,
            )
            return cookies.apply(form)

        try:
            body = await read_body(request, _Confirmation)
        except InvalidInput as exc:
            return confirm(**failure(exc))
        if body.password is not None:
            try:
                cookies = await reauthenticate(request, principal, body.password)
            except (InvalidCredentials, TooManyAttempts, AccountDisabled) as exc:
                return confirm(**failure(exc))
            principal = cookies.principal
        try:
            notice = await run(principal)
        except ReauthRequired:
            return confirm(403)
        if notice in SIGNED_OUT:
            return vr.sign_out(to_signin(request, notice))
        return cookies.apply(redirect(request, f"/account?notice={notice}"))

    @router.post("/account/signout-all")
    async def signout_all(request: Request) -> Response:
        async def run(principal: Principal) -> str:
            await service.end_all_sessions(principal)
            return "signed-out-everywhere"

        return await sensitive(request, "/account/signout-all", "Sign out everywhere", run)

    @router.post("/account/devices/{handle}/signout")
    async def signout_device(request: Request, handle: str) -> Response:
        async def run(principal: Principal) -> str:
            try:
                current = await service.end_session(principal, handle)
            except SessionNotFound:
                return "device-gone"
            return "signed-out" if current else "device-signed-out"

        path = f"/account/devices/{quote(handle, safe='')}/signout"
        return await sensitive(request, path, "Sign that device out", run)

    return router
