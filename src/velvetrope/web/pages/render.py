"""How pages are made: templates, notices, redirects, and errors that stay pages.

Server-rendered with Jinja2 (autoescaped), without a single script: pages run under
``default-src 'none'`` with no ``script-src`` (:data:`PAGE_CSP`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from velvetrope.errors import (
    AuthError,
    CsrfFailed,
    NotAuthenticated,
    StoreUnavailable,
    TooManyAttempts,
)
from velvetrope.web.context import WebContext, context_of
from velvetrope.web.errors import STATUS

__all__ = [
    "PAGE_CSP",
    "PageRoute",
    "credential_form",
    "failure",
    "notice_of",
    "redirect",
    "render",
    "static_files",
    "to_signin",
]

_logger = logging.getLogger("velvetrope.web")
_WEB = Path(__file__).parent.parent

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
    # account lifecycle
    "password-reset": "Your password is reset and every device is signed out. Sign in with it.",
    "password-changed": "Your password is changed; every other device is signed out.",
    "password-changed-signin": "Your password is changed and every device is signed out. "
    "Sign in with the new one.",
    "verification-sent": "A verification link is on its way to your inbox.",
    "already-verified": "Your address is already verified.",
}
CSRF_REFUSED = (
    "This form had expired or did not come from this site, so nothing was changed. "
    "Go back, reload the page and try again."
)
STORE_DOWN = (
    "The sign-in service cannot reach its store right now, so nothing was changed. "
    "Try again in a few seconds."
)

_env = Environment(
    loader=FileSystemLoader(_WEB / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


_PAGE_HEADERS = (
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
)


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """``template`` rendered for ``request``, under the pages' CSP and with the headers a
    page needs wherever it is served (``velvetrope serve`` adds them to every answer;
    ``install(app, pages=True)`` puts the pages in an app that may not): no referrer
    (a mailed link's secret is in the URL), no sniffing, no framing, no caching."""
    context = {"notice": None, "error": None, "hint": None, "signed_in": False, **context}
    html = _env.get_template(template).render(root=_root(request), **context)
    response = HTMLResponse(html, status_code=status, headers=headers)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    for name, value in _PAGE_HEADERS:
        response.headers.setdefault(name, value)
    return response


def redirect(request: Request, path: str) -> Response:
    """A 303 to ``path`` under the app's root path."""
    return RedirectResponse(_root(request) + path, status_code=303)


def to_signin(request: Request, notice: str | None = None) -> Response:
    """A 303 to the sign-in page, with a notice word if given."""
    return redirect(request, f"/signin?notice={notice}" if notice else "/signin")


def notice_of(request: Request) -> str | None:
    """The notice the query string names, if it names a known one."""
    return NOTICES.get(request.query_params.get("notice", ""))


def status_of(exc: AuthError) -> int:
    """The HTTP status the error table gives ``exc``."""
    return next((status for cls, status, _ in STATUS if isinstance(exc, cls)), 400)


def _wait(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} second{'s' if seconds > 1 else ''}"
    return f"{(seconds + 59) // 60} minutes"


def failure(exc: AuthError) -> dict[str, Any]:
    """The status, message and headers of a form re-rendered for ``exc``."""
    headers = {}
    error, hint = exc.detail, None
    if isinstance(exc, TooManyAttempts):  # say exactly how long instead of "later"
        seconds = max(1, int(exc.retry_after.total_seconds() + 0.999))
        headers["Retry-After"] = str(seconds)
        error = re.sub(r"; try again later\.$", ".", error)
        hint = f"You can try again in {_wait(seconds)}."
    return {"status": status_of(exc), "error": error, "hint": hint, "headers": headers}


def credential_form(
    request: Request, ctx: WebContext, template: str, *, email: str = "", **context: Any
) -> Response:
    """A sign-in or sign-up form with its pre-session CSRF token (and cookie, if new)."""
    presession = ctx.csrf.presession(request)
    response = render(request, template, csrf_token=presession.token, email=email, **context)
    ctx.csrf.remember(response, presession)
    return response


def static_files() -> StaticFiles:
    """The pages' stylesheet and icons, for ``app.mount("/static", ...)``."""
    return _Static(directory=_WEB / "static")


class _Static(StaticFiles):
    """Static files the browser may cache for an hour (they hold nothing personal)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = STATIC_CACHE
        return response


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def error_page(request: Request, exc: AuthError, back: str) -> Response:
    """The page for an error a page handler let through: never JSON."""
    if isinstance(exc, CsrfFailed):
        title, message, status, headers = "Request refused", CSRF_REFUSED, 403, None
    elif isinstance(exc, StoreUnavailable):
        _logger.error("store unavailable: %s", exc.detail)
        title, message, status = "Try again shortly", STORE_DOWN, 503
        headers = {"Retry-After": "5"}
    elif isinstance(exc, NotAuthenticated):  # the sign-in ended (or the account went)
        return context_of(request).browser.sign_out(to_signin(request, "expired"))
    else:
        title, message, status, headers = "That did not work", exc.detail, status_of(exc), None
    return render(
        request,
        "error.html",
        status=status,
        headers=headers,
        title=title,
        message=message,
        back=back,
    )


class PageRoute(APIRoute):
    """Page errors are pages: CSRF refusals, outages and dead sign-ins never turn JSON."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        back = "/account" if self.path.startswith("/account") else self.path

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except AuthError as exc:
                return error_page(request, exc, back)

        return page
