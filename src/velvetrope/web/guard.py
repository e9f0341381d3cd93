"""``AuthMiddleware``: the session/token check as pure ASGI, for any ASGI app.

The FastAPI dependency (``Depends(auth.principal)``) is the convenient way to protect
a route; this middleware is the cheap one: no dependency resolution, one pass over
the raw headers. It checks every request under the protected path prefixes (and, for
unsafe methods authenticated by a cookie, the CSRF checks), answers 401/403/503 itself
(same JSON and headers as the app), and leaves the
:class:`~velvetrope.core.principal.Principal` in ``scope["state"]`` where ``request.state``
and ``Depends(auth.principal)`` find it without checking twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from velvetrope.errors import AuthError
from velvetrope.web.dependencies import PRINCIPAL_KEY
from velvetrope.web.errors import error_response
from velvetrope.web.routing import route_path

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
        self.velvetrope = velvetrope
        self.gate = velvetrope.context.gate
        self.protect = tuple(protect)
        self.exempt = tuple(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        if not _under(path, self.protect) or _under(path, self.exempt):
            await self.app(scope, receive, send)
            return
        try:
            principal, receive = await self.gate.check_scope(scope, receive)
        except AuthError as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})  # 403 before accept
                return
            await error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)


def _under(path: str, prefixes: Sequence[str]) -> bool:
    """Whether ``path`` is one of ``prefixes`` or below one, on a segment boundary."""
    for prefix in prefixes:
        base = prefix.rstrip("/")
        if path == base or path.startswith(base + "/"):
            return True
    return False
