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
    POST /account/...                        sign out: this device, one, or everywhere
    POST /account/password, /account/email/verify   change the password, resend the link
    GET, POST /password/forgot, /password/reset, /email/verify   the links sent by mail

Every POST checks where it comes from and its ``csrf_token`` field (checklist 1.8);
a refusal is a 403 page, a store outage a 503 page.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from velvetrope.web.context import WebContext
from velvetrope.web.pages import account, account_settings, recovery, signin
from velvetrope.web.pages.render import PAGE_CSP, static_files
from velvetrope.web.redact import redact_link_tokens

__all__ = ["PAGE_CSP", "build_page_router", "static_files"]


def build_page_router(ctx: WebContext) -> APIRouter:
    """The browser pages bound to ``ctx`` (mount the :func:`static_files` too)."""
    redact_link_tokens()  # the mailed links' secrets travel in query strings
    router = APIRouter(dependencies=[Depends(ctx.bind)], include_in_schema=False)
    router.include_router(signin.routes)
    router.include_router(account.routes)
    router.include_router(account_settings.routes)
    router.include_router(recovery.routes)
    return router
