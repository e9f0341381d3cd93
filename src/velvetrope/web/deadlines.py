"""The body deadline: a request's whole body must arrive in time (slow clients, issue 14).

uvicorn hands the app a body as it trickles in and waits for ever for the next piece.
:class:`BodyDeadline` wraps ``receive`` so the whole body must have arrived within
``timeout`` of the app first asking for it; past that the read raises
:class:`~velvetrope.web.errors.RequestTimeout`, which the error table answers with
``408`` and ``Connection: close``. A deadline for the whole body, not per piece: a
client that sends one byte just inside every per-read timeout is still cut off.
Requests whose body the app never reads cost nothing.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from velvetrope.web.errors import RequestTimeout

__all__ = ["BodyDeadline"]


class BodyDeadline:
    """Pure ASGI middleware: bound the time the whole request body may take."""

    def __init__(self, app: ASGIApp, *, timeout: timedelta) -> None:
        self.app = app
        self.timeout = timeout.total_seconds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, self._bounded(receive), send)

    def _bounded(self, receive: Receive) -> Receive:
        deadline: float | None = None
        done = False

        async def bounded() -> Message:
            nonlocal deadline, done
            if done:  # the body is in: later reads wait for the disconnect, unbounded
                return await receive()
            loop = asyncio.get_running_loop()
            if deadline is None:
                deadline = loop.time() + self.timeout
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                done = True
            return message

        return bounded
