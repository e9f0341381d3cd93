"""``AuthMiddleware``: the session/token check as pure ASGI, for any ASGI app.

The FastAPI dependency (``Depends(auth.principal)``) is the convenient way to protect
a route; this middleware is the cheap one: no dependency resolution, one pass over
the raw headers. It checks every request under the protected path prefixes, answers
401/503 itself (same JSON and headers as the app), and leaves the
:class:`~velvetrope.core.principal.Principal` in ``scope["state"]`` where
``request.state`` and ``Depends(auth.principal)`` find it without checking twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from velvetrope.errors import AuthError
from velvetrope.web.errors import error_response
from velvetrope.web.extension import PRINCIPAL_KEY

if TYPE_CHECKING:
    from velvetrope.web.extension import Velvetrope

__all__ = ["AuthMiddleware"]


class AuthMiddleware:
    """Require a valid session cookie or bearer token under ``protect`` path prefixes."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        velvetrope: Velvetrope,
        protect: Sequence[str] = ("/",),
        exempt: Sequence[str] = (),
    ) -> None:
        """Wrap ``app``.

        Args:
            app: The ASGI app to protect.
            velvetrope: The auth instance whose check runs.
            protect: Path prefixes that require a principal.
            exempt: Path prefixes inside ``protect`` that do not (sign-in pages, health).
        """
        self.app = app
        self.vr = velvetrope
        self.protect = tuple(protect)
        self.exempt = tuple(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if not path.startswith(self.protect) or (self.exempt and path.startswith(self.exempt)):
            await self.app(scope, receive, send)
            return
        try:
            principal = await self.vr.authenticate_scope(scope)
        except AuthError as exc:
            await error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)
