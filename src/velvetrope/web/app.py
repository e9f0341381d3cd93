"""The standalone server's ASGI app: ``create_app()``."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from velvetrope._version import __version__
from velvetrope.core.passwords import PasswordPolicy
from velvetrope.settings import Settings
from velvetrope.web.context import WebContext
from velvetrope.web.csrf import CSRF_HEADER
from velvetrope.web.deadlines import BodyDeadline
from velvetrope.web.docs import add_docs
from velvetrope.web.errors import install_error_handlers
from velvetrope.web.extension import Velvetrope
from velvetrope.web.middleware import OriginCheck, RequestLimits, SecurityHeaders
from velvetrope.web.openapi import install_openapi
from velvetrope.web.pages import build_page_router, static_files
from velvetrope.web.routes import build_health_router
from velvetrope.web.routes.gateway import EdgeCheck
from velvetrope.web.routing import AUTH_SEGMENTS, HEALTH_SEGMENTS, PAGE_SEGMENTS, PathGate

__all__ = ["create_app"]


class _App(FastAPI):
    """FastAPI with security headers around the *whole* stack.

    ``add_middleware`` places middleware inside Starlette's ServerErrorMiddleware and
    after anything added later, so 500s and early 413/431 answers would miss the
    headers; wrapping the built stack covers every response.
    """

    security_headers_hsts = False
    edge_check: WebContext | None = None  # the hybrid gateway's fast path, when it is on

    def build_middleware_stack(self) -> ASGIApp:
        stack = SecurityHeaders(super().build_middleware_stack(), hsts=self.security_headers_hsts)
        if self.edge_check is not None:
            return EdgeCheck(stack, self.edge_check)
        return stack


def create_app(
    settings: Settings | None = None, *, velvetrope: Velvetrope | None = None
) -> FastAPI:
    """Build the auth server app.

    Args:
        settings: Configuration; read from ``VELVETROPE_*`` when omitted.
        velvetrope: A ready :class:`Velvetrope` (tests inject one); else built from ``settings``.

    Raises:
        ConfigurationError, StoreUnavailable: The configured store cannot be opened.
    """
    vr = velvetrope or Velvetrope(settings, origin_from_listener=True)
    app = _App(
        title="velvetrope",
        version=__version__,
        summary="Session, JWT and hybrid authentication.",
        lifespan=vr.lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.velvetrope = vr
    install_error_handlers(app)
    app.include_router(PathGate(vr.router, AUTH_SEGMENTS))
    app.include_router(PathGate(build_health_router(vr.context), HEALTH_SEGMENTS))
    app.include_router(PathGate(build_page_router(vr.context), PAGE_SEGMENTS))
    app.mount("/static", static_files(), name="static")
    add_docs(app)
    install_openapi(
        app,
        vr.authenticator.backends,
        password_min_length=vr.settings.password_min_length,
        password_max_length=PasswordPolicy(vr.settings.password_min_length).max_length,
    )
    app.security_headers_hsts = vr.settings.https
    if vr.context.gateway is not None:
        app.edge_check = vr.context
    app.add_middleware(OriginCheck, context=vr.context)
    allowed = vr.settings.cors_allowlist()
    if allowed:  # CSRF-11: exact origins with credentials, never "*"
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(allowed),
            allow_credentials=True,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Content-Type", "Authorization", CSRF_HEADER, "DPoP"],
            # RFC 9449: a browser client must read the nonce and the DPoP challenge.
            expose_headers=["DPoP-Nonce", "WWW-Authenticate"],
            max_age=600,
        )
    app.add_middleware(BodyDeadline, timeout=vr.settings.body_timeout)  # slow bodies: 408
    app.add_middleware(
        RequestLimits,
        max_body_bytes=vr.settings.max_body_bytes,
        max_cookie_bytes=vr.settings.max_cookie_bytes,
    )
    return app
