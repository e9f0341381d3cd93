"""``Velvetrope``: the auth service dressed for ASGI, ready to drop into an app.

::

    from fastapi import Depends, FastAPI
    from velvetrope import Principal, Settings, Velvetrope

    auth = Velvetrope(Settings())
    app = FastAPI(lifespan=auth.lifespan)
    app.include_router(auth.router)          # /auth/* endpoints

    @app.get("/orders")
    async def orders(who: Principal = Depends(auth.principal)) -> dict[str, str]:
        return {"user": who.user_id}

The facade builds the router, the dependencies and the lifespan; the work is done by
the parts it wires (:class:`~velvetrope.web.context.WebContext`): the ways in
(:class:`~velvetrope.web.backends.Authenticator`), the request check
(:class:`~velvetrope.web.dependencies.Gate`), the browser flows
(:class:`~velvetrope.web.browser.BrowserFlows`) and the service.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from fastapi import APIRouter
from starlette.requests import HTTPConnection

from velvetrope.bootstrap import build_service
from velvetrope.core.devices import Device
from velvetrope.core.principal import Principal
from velvetrope.core.service import AuthService
from velvetrope.settings import Settings
from velvetrope.web.backends import AuthBackend, Authenticator
from velvetrope.web.browser import BrowserFlows
from velvetrope.web.context import WebContext
from velvetrope.web.csrf import CsrfGuard
from velvetrope.web.routes import (
    build_auth_router,
    build_dbsc_router,
    build_gateway_router,
    build_token_router,
)
from velvetrope.web.transports import CookieTransport

__all__ = ["Velvetrope"]


class Velvetrope:
    """Settings, the auth service, the ways in and the ``/auth`` router, together.

    Attributes:
        principal: FastAPI dependency: the signed-in caller, or a 401 (CSRF-checked
            for cookie credentials on unsafe methods; see ``Gate.principal``).
        optional_principal: FastAPI dependency: the caller, or ``None``.
    """

    principal: Callable[[HTTPConnection], Awaitable[Principal]]
    optional_principal: Callable[[HTTPConnection], Awaitable[Principal | None]]

    def __init__(self, settings: Settings | None = None, *, service: AuthService | None = None):
        """Build from ``settings`` (default: the environment). Nothing connects until
        the lifespan starts.

        Args:
            settings: Configuration; read from ``VELVETROPE_*`` when omitted.
            service: A ready service (tests inject one with a frozen clock or memory stores).

        Raises:
            ConfigurationError: A store URL is not supported.
        """
        self.settings = settings or Settings()
        self.context = WebContext(self.settings, service or build_service(self.settings))
        self.principal = self.context.gate.principal
        self.optional_principal = self.context.gate.optional_principal
        self._router: APIRouter | None = None

    @property
    def service(self) -> AuthService:
        """The auth service."""
        return self.context.service

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
            ValueError: A backend has that name already, or ``before`` names none.
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
            if self.context.browser.binds:
                router.include_router(build_dbsc_router(self.context))
            if self.context.gateway is not None:
                router.include_router(build_gateway_router(self.context))
            self._router = router
        return self._router

    async def devices(self, principal: Principal) -> list[Device]:
        """The principal's devices, every way in included, oldest first."""
        return await self.context.devices(principal)

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        """ASGI lifespan: start the service, keep it in step with other nodes while the
        app serves (``AuthService.run_background``), close the stores at the end."""
        await self.service.start()
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
                finally:
                    tasks.cancel_scope.cancel()
        finally:
            await self.service.aclose()
