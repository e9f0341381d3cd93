"""``Velvetrope``: the auth service dressed for ASGI, ready to drop into an app.

::

    from fastapi import Depends, FastAPI
    from velvetrope import Principal, Settings, Velvetrope

    auth = Velvetrope(Settings(public_origin="https://app.example.com"))
    app = FastAPI()
    auth.install(app)       # /auth/* endpoints, the error mapping, the lifespan

    @app.get("/orders")
    async def orders(who: Principal = Depends(auth.principal)) -> dict[str, str]:
        return {"user": who.user_id}

In your own app the public origin must be configured (``VELVETROPE_PUBLIC_ORIGIN``):
CSRF checks, DPoP proofs and the tokens' ``iss``/``aud`` all depend on it, and
velvetrope cannot know the host and port your server answers on. Without it the
constructor refuses with one sentence.

The facade builds the router, the dependencies and the lifespan; the work is done by
the parts it wires (:class:`~velvetrope.web.context.WebContext`): the ways in
(:class:`~velvetrope.web.backends.Authenticator`), the request check
(:class:`~velvetrope.web.dependencies.Gate`), the browser flows
(:class:`~velvetrope.web.browser.BrowserFlows`) and the service.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI
from fastapi import exception_handlers as defaults
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from velvetrope.bootstrap import build_service
from velvetrope.core.devices import Device
from velvetrope.core.hooks import Hooks
from velvetrope.core.principal import Principal
from velvetrope.core.service import AuthService
from velvetrope.errors import ConfigurationError, StoreUnavailable
from velvetrope.settings import Settings
from velvetrope.startup import describe_store_failure, settings_from_environment
from velvetrope.web.backends import AuthBackend, Authenticator
from velvetrope.web.browser import BrowserFlows
from velvetrope.web.context import WebContext
from velvetrope.web.csrf import CsrfGuard
from velvetrope.web.errors import install_error_handlers
from velvetrope.web.pages import build_page_router, static_files
from velvetrope.web.routes import (
    build_accounts_router,
    build_auth_router,
    build_dbsc_router,
    build_gateway_router,
    build_token_router,
)
from velvetrope.web.routing import AUTH_SEGMENTS, PAGE_SEGMENTS, PathGate
from velvetrope.web.transports import CookieTransport

__all__ = ["ORIGIN_REQUIRED", "Velvetrope"]

ORIGIN_REQUIRED = (
    "velvetrope needs the origin your users reach this app at: set VELVETROPE_PUBLIC_ORIGIN "
    "(or Settings(public_origin=...)), e.g. https://app.example.com or "
    "http://127.0.0.1:8001 for local development"
)
_logger = logging.getLogger("velvetrope")


class Velvetrope:
    """Settings, the auth service, the ways in and the ``/auth`` router, together.

    Attributes:
        principal: FastAPI dependency: the signed-in caller, or a 401 (CSRF-checked
            for cookie credentials on unsafe methods; see ``Gate.principal``).
        optional_principal: FastAPI dependency: the caller, or ``None``.
    """

    principal: Callable[[HTTPConnection], Awaitable[Principal]]
    optional_principal: Callable[[HTTPConnection], Awaitable[Principal | None]]

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        service: AuthService | None = None,
        origin_from_listener: bool = False,
    ):
        """Build from ``settings`` (default: the environment). Nothing connects until
        the lifespan starts.

        Args:
            settings: Configuration; read from ``VELVETROPE_*`` when omitted.
            service: A ready service (tests inject one with a frozen clock or memory stores).
            origin_from_listener: Let the origin default to ``http://HOST:PORT`` of the
                settings: only for the standalone server (``create_app``), which listens
                there. In your own app the origin must be configured.

        Without ``settings``, a ``VELVETROPE_*`` variable that names no setting is
        logged as a warning on the ``velvetrope`` logger (with the nearest valid name),
        as ``velvetrope serve`` prints it.

        Raises:
            ConfigurationError: A variable or ``.env`` is invalid (one sentence naming
                it), a store URL is not supported, or no public origin is configured
                (:data:`ORIGIN_REQUIRED`).
        """
        self.settings = settings or settings_from_environment(_logger.warning)
        if self.settings.public_origin is None and not origin_from_listener:
            raise ConfigurationError(ORIGIN_REQUIRED)
        self.context = WebContext(self.settings, service or build_service(self.settings))
        self.principal = self.context.gate.principal
        self.optional_principal = self.context.gate.optional_principal
        self._router: APIRouter | None = None
        self._running = 0

    @property
    def service(self) -> AuthService:
        """The auth service."""
        return self.context.service

    @property
    def hooks(self) -> Hooks:
        """The application's hooks: claims for tokens and sessions, and code to run on
        register, sign-in, sign-out, password change and refresh reuse (see
        :mod:`velvetrope.core.hooks`)."""
        return self.context.service.hooks

    @property
    def authenticator(self) -> Authenticator:
        """The ways in, in the order they are asked."""
        return self.context.authenticator

    @property
    def browser(self) -> BrowserFlows:
        """Browser sign-in, renewal and sign-out."""
        return self.context.browser

    @property
    def csrf(self) -> CsrfGuard:
        """CSRF tokens and the origin policy."""
        return self.context.csrf

    @property
    def transport(self) -> CookieTransport:
        """The session cookie."""
        return self.context.cookies.session

    def add_backend(self, backend: AuthBackend, *, before: str | None = None) -> None:
        """Add a way in (last, or before the backend called ``before``); call it before
        the app serves.

        Raises:
            ValueError: A backend has that name already, or its name is empty, or
                ``before`` names none.
            TypeError: Its transport or strategy lacks a method or attribute the
                ``Transport`` or ``Strategy`` protocol asks for.

        A refused backend changes nothing: the ways in already there keep working.
        """
        self.context.authenticator.add(backend, before=before)

    @property
    def router(self) -> APIRouter:
        """The ``/auth/*`` endpoints (``/auth/dbsc/*`` too when browser sessions may be
        bound to devices) and ``/.well-known/jwks.json``, bound to this instance."""
        if self._router is None:
            router = APIRouter()
            router.include_router(build_auth_router(self.context))
            router.include_router(build_token_router(self.context))
            router.include_router(build_accounts_router(self.context))
            if self.context.browser.binds:
                router.include_router(build_dbsc_router(self.context))
            if self.context.gateway is not None:
                router.include_router(build_gateway_router(self.context))
            self._router = router
        return self._router

    async def devices(self, principal: Principal) -> list[Device]:
        """The principal's devices, every way in included, oldest first."""
        return await self.context.devices(principal)

    def install(self, app: FastAPI, *, pages: bool = False) -> FastAPI:
        """Mount velvetrope into your app with one call: the ``/auth/*`` router, the error
        mapping (every :class:`~velvetrope.errors.AuthError` raised in any route, yours
        included, gets its documented status, headers and ``{"error", "detail"}`` body),
        and the lifespan (chained around the app's own; no ``lifespan=`` needed).

        The app's own handlers for ``HTTPException`` and request validation stay if it
        set any; otherwise they take the same JSON shape. ``app.state.velvetrope`` is this
        instance (:mod:`velvetrope.testing` finds it there).

        Args:
            app: Your FastAPI app.
            pages: Also serve velvetrope's browser pages: ``/signin``, ``/signup``,
                ``/account`` and the pages the mailed links open (``/password/forgot``,
                ``/password/reset``, ``/email/verify``), with their stylesheet under
                ``/static``. Without them, the links in reset and verification mails
                point at paths your app must serve itself (see the README).

        Returns:
            ``app``, for chaining.

        Raises:
            RuntimeError: A velvetrope is installed in ``app`` already, or ``pages`` and
                the app mounts something at ``/static`` already.
        """
        if getattr(app.state, "velvetrope", None) is not None:
            raise RuntimeError("a velvetrope is installed in this app already")
        if pages and any(getattr(r, "path", None) == "/static" for r in app.routes):
            raise RuntimeError(
                "install(app, pages=True) serves the pages' stylesheet at /static, where "
                "this app mounts something already"
            )
        _install_handlers(app)
        # Gated: a request to one of your routes never walks velvetrope's (web/routing.py).
        app.include_router(PathGate(self.router, AUTH_SEGMENTS))
        if pages:
            app.include_router(PathGate(build_page_router(self.context), PAGE_SEGMENTS))
            app.mount("/static", static_files(), name="static")
        app.state.velvetrope = self
        inner = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def lifespan(running_app: Any) -> AsyncIterator[Any]:
            async with self.lifespan(running_app), inner(running_app) as state:
                yield state

        app.router.lifespan_context = lifespan
        return app

    @property
    def running(self) -> bool:
        """Whether the lifespan has started and not yet ended."""
        return self._running > 0

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        """ASGI lifespan: start the service, keep it in step with other nodes while the
        app serves (``AuthService.run_background``), close the stores at the end.

        It can run again after it ended (one test client after another); entered again
        while running (``lifespan=auth.lifespan`` and :meth:`install` both), the inner
        entry shares the running service.
        """
        if self._running:
            self._running += 1
            try:
                yield
            finally:
                self._running -= 1
            return
        try:
            await self.service.start()
        except StoreUnavailable as exc:  # one sentence naming the store, not a driver's chain
            raise StoreUnavailable(describe_store_failure(exc, self.settings)) from None
        self._running = 1
        failure: Exception | None = None
        gateway = self.context.gateway
        try:
            if gateway is not None:
                await gateway.start()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self.service.run_background)
                if gateway is not None:
                    tasks.start_soon(gateway.run)
                try:
                    yield
                except Exception as exc:  # noqa: BLE001 - raised below, outside the task group (no ExceptionGroup)
                    failure = exc
                finally:
                    tasks.cancel_scope.cancel()
        finally:
            self._running = 0
            await self.service.aclose()
        if failure is not None:
            raise failure


def _install_handlers(app: FastAPI) -> None:
    """The error mapping, keeping handlers the app chose itself (FastAPI's defaults go)."""
    kept = {
        kind: handler
        for kind, handler in app.exception_handlers.items()
        if kind is Exception
        or (kind is HTTPException and handler is not defaults.http_exception_handler)
        or (
            kind is RequestValidationError
            and handler is not defaults.request_validation_exception_handler
        )
    }
    install_error_handlers(app)
    app.exception_handlers.update(kept)
