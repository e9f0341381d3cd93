"""The check every protected request passes, as FastAPI dependencies and for raw ASGI.

Who: the :class:`~velvetrope.web.backends.Authenticator` (the first backend with a
credential decides). Then, for a credential the browser sends on its own (an ambient
transport, a cookie): on unsafe methods the CSRF checks, on WebSocket upgrades the
origin check. ``Depends(auth.principal)`` and
:class:`~velvetrope.web.guard.AuthMiddleware` run exactly this; a request the
middleware already checked is not checked again.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.types import Receive, Scope

from velvetrope.core.principal import Principal
from velvetrope.errors import CsrfFailed, NotAuthenticated
from velvetrope.web.backends import Authenticator
from velvetrope.web.csrf import SAFE_METHODS, CsrfGuard, buffered_form_token, form_token

__all__ = ["PRINCIPAL_KEY", "Gate"]

PRINCIPAL_KEY = "velvetrope.principal"
"""Where :class:`~velvetrope.web.guard.AuthMiddleware` leaves the principal (``scope["state"]``)."""


class Gate:
    """Authentication plus the CSRF and origin checks that ambient credentials need."""

    def __init__(self, authenticator: Authenticator, csrf: CsrfGuard) -> None:
        self.authenticator = authenticator
        self.csrf = csrf

    async def principal(self, connection: HTTPConnection) -> Principal:
        """FastAPI dependency: the signed-in caller, or a 401.

        An ``Authorization: Bearer`` header, when present, is the credential (and
        cookies are ignored); otherwise the session cookie (or, in JWT-in-cookie mode,
        the access-token cookie). An unsafe request authenticated by a cookie must also
        pass the CSRF checks (see :mod:`velvetrope.web.csrf`).

        Raises:
            InvalidToken: A bearer token that is not valid (401 ``invalid_token``).
            NotAuthenticated: No credential, or not a live session.
            CsrfFailed: A cookie-authenticated unsafe request without a valid CSRF token,
                or from another origin (403).
            StoreUnavailable: The store did not answer (503; never lets the request through).
        """
        scope = connection.scope
        known = scope.get("state", {}).get(PRINCIPAL_KEY)
        if known is not None:  # AuthMiddleware already checked this request
            return known  # type: ignore[no-any-return]
        principal = await self.authenticator.authenticate(scope)
        if scope["type"] == "websocket":
            self.check_websocket_origin(scope, principal)
        elif scope["method"] not in SAFE_METHODS and self.authenticator.is_ambient(principal):
            self.csrf.check(scope, principal, await form_token(connection))
        return principal

    async def optional_principal(self, connection: HTTPConnection) -> Principal | None:
        """FastAPI dependency: the signed-in caller, or ``None`` when there is none."""
        try:
            return await self.principal(connection)
        except NotAuthenticated:
            return None

    async def check_scope(self, scope: Scope, receive: Receive) -> tuple[Principal, Receive]:
        """:meth:`principal` for raw ASGI: reads a form body for its CSRF token if need be
        and returns a ``receive`` that replays it.

        Raises:
            As :meth:`principal`.
        """
        principal = await self.authenticator.authenticate(scope)
        if scope["type"] == "websocket":
            self.check_websocket_origin(scope, principal)
        elif scope["method"] not in SAFE_METHODS and self.authenticator.is_ambient(principal):
            submitted, receive = await buffered_form_token(scope, receive)
            self.csrf.check(scope, principal, submitted)
        return principal, receive

    def check_websocket_origin(self, scope: Scope, principal: Principal) -> None:
        """Refuse a cookie-authenticated WebSocket upgrade from another origin.

        Browsers send cookies on upgrades from any page and a socket has no CSRF
        token, so the ``Origin`` check is the defence (cross-site WebSocket hijacking).

        Raises:
            CsrfFailed: The upgrade does not come from the configured origin.
        """
        if not self.authenticator.is_ambient(principal):
            return
        reason = self.csrf.policy.refusal(scope, carries_cookie=True)
        if reason is not None:
            raise CsrfFailed(reason)
