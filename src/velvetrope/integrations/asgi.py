"""Internal-token authentication as pure ASGI middleware, and as a FastAPI dependency.

::

    from fastapi import Depends, FastAPI
    from velvetrope.integrations import InternalAuth, InternalTokenVerifier

    verifier = InternalTokenVerifier(
        jwks_url="http://auth.internal/auth/gateway/jwks.json",
        issuer="https://app.example.com",
        audience="orders",
    )
    auth = InternalAuth(verifier)
    app = FastAPI()

    @app.get("/orders")
    async def orders(claims=Depends(auth)) -> dict[str, str]:
        return {"user": claims.sub}

Or guard a whole app: ``app = InternalAuthMiddleware(app, verifier)``; the claims are
then in ``scope["state"]["velvetrope.internal"]`` (``request.state`` in Starlette).
"""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from velvetrope.core.gateway.claims import InternalClaims
from velvetrope.errors import AuthError
from velvetrope.integrations._http import bearer_token, refusal
from velvetrope.integrations.verifier import InternalTokenVerifier

__all__ = ["CLAIMS_KEY", "InternalAuth", "InternalAuthError", "InternalAuthMiddleware"]

CLAIMS_KEY = "velvetrope.internal"
"""Where the middleware leaves the verified claims (``scope["state"]``)."""


class InternalAuthMiddleware:
    """Refuse every HTTP and WebSocket request without a valid internal token.

    Args:
        app: The service.
        verifier: Checks the tokens.
        exempt: Paths served without a token (health checks), matched exactly.
    """

    def __init__(
        self, app: ASGIApp, verifier: InternalTokenVerifier, *, exempt: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        try:
            claims = await self.verifier.verify(bearer_token(scope["headers"]))
        except AuthError as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            status, body, headers = refusal(exc)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})[CLAIMS_KEY] = claims
        await self.app(scope, receive, send)


class InternalAuthError(Exception):
    """Raised by :class:`InternalAuth`; :meth:`InternalAuth.install` answers it."""

    def __init__(self, error: AuthError) -> None:
        super().__init__(error.detail)
        self.error = error


class InternalAuth:
    """FastAPI dependency: the verified internal token's claims, or a refusal.

    Call :meth:`install` on the app once, so refusals get velvetrope's error shape
    (``{"error", "detail"}``, 401 with ``WWW-Authenticate``, or 503).
    """

    def __init__(self, verifier: InternalTokenVerifier) -> None:
        self.verifier = verifier

    async def __call__(self, connection: HTTPConnection) -> InternalClaims:
        known = connection.scope.get("state", {}).get(CLAIMS_KEY)
        if isinstance(known, InternalClaims):  # the middleware checked it already
            return known
        try:
            return await self.verifier.verify(bearer_token(connection.scope["headers"]))
        except AuthError as exc:
            raise InternalAuthError(exc) from None

    @staticmethod
    def install(app: object) -> None:
        """Register the handler that turns :class:`InternalAuthError` into a response."""
        from starlette.applications import Starlette  # noqa: PLC0415
        from starlette.requests import Request  # noqa: PLC0415
        from starlette.responses import Response  # noqa: PLC0415

        if not isinstance(app, Starlette):
            raise TypeError("install() needs a Starlette or FastAPI app")

        async def handler(_: Request, exc: Exception) -> Response:
            assert isinstance(exc, InternalAuthError)  # noqa: S101 - registered for it
            status, body, headers = refusal(exc.error)
            kept = {k.decode(): v.decode() for k, v in headers if k != b"content-length"}
            return Response(body, status_code=status, headers=kept)

        app.add_exception_handler(InternalAuthError, handler)
