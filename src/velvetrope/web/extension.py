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
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from fastapi import APIRouter
from starlette.requests import HTTPConnection
from starlette.types import Scope

from velvetrope.core.principal import Principal
from velvetrope.core.service import AuthService
from velvetrope.errors import AuthError, NotAuthenticated
from velvetrope.settings import Settings
from velvetrope.web.transports import BearerTransport, CookieTransport

__all__ = ["PRINCIPAL_KEY", "Velvetrope"]

PRINCIPAL_KEY = "velvetrope.principal"
"""Where :class:`~velvetrope.web.guard.AuthMiddleware` leaves the principal (``scope["state"]``)."""

_logger = logging.getLogger("velvetrope")
PURGE_EVERY = 600.0


class Velvetrope:
    """Settings, the auth service, the cookie transport and the ``/auth`` router, together."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        service: AuthService | None = None,
        transport: CookieTransport | None = None,
    ) -> None:
        """Build from ``settings`` (default: the environment).

        Args:
            settings: Configuration; read from ``VELVETROPE_*`` when omitted.
            service: A ready service (tests inject one with a frozen clock or memory stores).
            transport: How the session ID travels; a cookie per ``settings`` by default.

        Raises:
            ConfigurationError, StoreUnavailable: The configured store cannot be opened.
        """
        self.settings = settings or Settings()
        self.service = service or AuthService.from_settings(self.settings)
        self.transport = transport or CookieTransport(secure=self.settings.secure_cookies)
        self.bearer = BearerTransport()
        self._router: APIRouter | None = None

    @property
    def router(self) -> APIRouter:
        """The ``/auth/*`` endpoints and ``/.well-known/jwks.json``, bound to this instance."""
        if self._router is None:
            from velvetrope.web.routes import build_auth_router, build_token_router  # noqa: PLC0415

            self._router = APIRouter()
            self._router.include_router(build_auth_router(self))
            self._router.include_router(build_token_router(self))
        return self._router

    async def principal(self, connection: HTTPConnection) -> Principal:
        """FastAPI dependency: the signed-in caller, or a 401.

        An ``Authorization: Bearer`` header, when present, is the credential (and the
        cookie is ignored); otherwise the session cookie.

        Raises:
            InvalidToken: A bearer token that is not valid (401 ``invalid_token``).
            NotAuthenticated: No credential, or not a live session.
            StoreUnavailable: The store did not answer (503; never lets the request through).
        """
        scope = connection.scope
        known = scope.get("state", {}).get(PRINCIPAL_KEY)
        if known is not None:  # AuthMiddleware already checked this request
            return known  # type: ignore[no-any-return]
        return await self.authenticate_scope(scope)

    async def authenticate_scope(self, scope: Scope) -> Principal:
        """The per-request check on a raw ASGI scope (see :meth:`principal`)."""
        token = self.bearer.read_scope(scope)
        if token is not None:
            return await self.service.authenticate_bearer(token)
        secret = self.transport.read_scope(scope)
        if secret is None:
            raise NotAuthenticated
        return await self.service.authenticate(secret)

    async def optional_principal(self, connection: HTTPConnection) -> Principal | None:
        """FastAPI dependency: the signed-in caller, or ``None`` when there is none."""
        try:
            return await self.principal(connection)
        except NotAuthenticated:
            return None

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        """ASGI lifespan: load keys and revocations; keep them fresh; close stores at the end."""
        await self.service.start()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._every, PURGE_EVERY, self._maintain)
            tasks.start_soon(
                self._every, self.settings.revocation_poll.total_seconds(), self.service.tokens.sync
            )
            notifier = self.service.stores.notifier
            if notifier is not None:  # push: other nodes' revocations arrive in milliseconds
                tasks.start_soon(notifier.listen, self._on_change)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
        await self.service.aclose()

    async def _on_change(self, topic: str) -> None:
        try:
            await self.service.tokens.on_change(topic)
        except AuthError as exc:
            _logger.warning("push %s could not be applied: %s", topic, exc.detail)

    async def _maintain(self) -> None:
        await self.service.sessions.purge_expired()
        await self.service.users.throttle.purge(self.service.now())
        await self.service.tokens.maintain()

    @staticmethod
    async def _every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
        """Run ``job`` every ``seconds``; a store outage is logged and retried, never fatal."""
        while True:
            await anyio.sleep(seconds)
            try:
                await job()
            except AuthError as exc:
                _logger.warning("background job %s failed: %s", job.__name__, exc.detail)
