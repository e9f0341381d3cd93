"""Slow and greedy clients, at the connection: what ``velvetrope serve`` gives uvicorn.

uvicorn bounds the idle time *between* requests (``timeout_keep_alive``) but nothing
before the first one, and not the time a request's head takes to arrive: a client that
connects and sends a header byte now and then (slowloris) holds its connection for
ever. Its ``limit_concurrency`` counts idle connections too, so a thousand of them
turn every new request into a 503. The protocol below closes both gaps:

* **header timeout**: the request line and headers must arrive within
  ``header_timeout`` of the connection opening or of the request's first byte, else
  ``408`` and the connection is closed (as nginx's ``client_header_timeout``);
* **header size**: a head larger than ``max_header_bytes`` gets ``431`` and is closed;
* **connection cap**: past ``max_connections`` the connection idle the longest (waiting
  for headers or between requests) is closed to make room; only when none is idle is
  the new connection refused with ``503``. Greedy clients lose their idle sockets
  before anyone loses a request.

The body is bounded at the ASGI level (:class:`velvetrope.web.deadlines.BodyDeadline`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from velvetrope.settings import Settings

__all__ = ["DEFAULT_LIMITS", "GuardedProtocol", "ServerLimits", "limits_of"]

_CLOSE = b"content-type: application/json\r\nconnection: close\r\n"


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What a slow or greedy client may hold on one worker.

    Attributes:
        header_timeout: Time for a request's line and headers to arrive.
        body_timeout: Time for a request's whole body, once the app reads it.
        keep_alive_timeout: Idle time allowed between requests on one connection.
        max_connections: Open connections per worker (idle ones are recycled first).
        max_header_bytes: Size of a request's line and headers.
    """

    header_timeout: timedelta
    body_timeout: timedelta
    keep_alive_timeout: timedelta
    max_connections: int
    max_header_bytes: int

    def configure(self, config: Any) -> None:
        """Put these limits on a ``uvicorn.Config`` made with :meth:`uvicorn_options`."""
        setattr(config, _ATTRIBUTE, self)

    def uvicorn_options(self) -> dict[str, Any]:
        """Keyword arguments for ``uvicorn.Config``."""
        return {
            "http": GuardedProtocol,
            "timeout_keep_alive": max(1, round(self.keep_alive_timeout.total_seconds())),
            # uvicorn counts connections that are closing too; the protocol caps the live
            # ones (idle first), so this bounds in-flight requests and nothing else.
            "limit_concurrency": 2 * self.max_connections,
        }


_ATTRIBUTE = "velvetrope_limits"
DEFAULT_LIMITS = ServerLimits(
    header_timeout=timedelta(seconds=10),
    body_timeout=timedelta(seconds=30),
    keep_alive_timeout=timedelta(seconds=5),
    max_connections=2048,
    max_header_bytes=32 * 1024,
)
"""The settings' defaults (for a config nobody configured)."""


def _answer(status: bytes, code: str, detail: str) -> bytes:
    body = f'{{"error":"{code}","detail":"{detail}"}}'.encode()
    return (
        b"HTTP/1.1 " + status + b"\r\n" + _CLOSE
        + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )  # fmt: skip


TIMED_OUT = _answer(
    b"408 Request Timeout", "request_timeout", "The request headers did not arrive in time."
)
HEAD_TOO_LARGE = _answer(
    b"431 Request Header Fields Too Large", "header_too_large", "The request headers are too large."
)
BUSY = _answer(
    b"503 Service Unavailable", "server_busy", "Too many open connections; try again shortly."
)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the header timeout, header size and connection
    cap of the :class:`ServerLimits` that :meth:`ServerLimits.configure` put on the
    config (a module-level class, so a config for several worker processes pickles)."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        limits: ServerLimits = getattr(config, _ATTRIBUTE, DEFAULT_LIMITS)
        self.header_timeout = limits.header_timeout.total_seconds()
        self.max_header_bytes = limits.max_header_bytes
        self.max_connections = limits.max_connections

    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0
    _reading_head = False
    idle_since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()
        if self._live() > self.max_connections and not self._make_room():
            transport.write(BUSY)
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                self._refuse(HEAD_TOO_LARGE)
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._reading_head:  # the next request on a kept-alive connection
            self._await_head()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._stop_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.idle_since = time.monotonic()

    def _await_head(self) -> None:
        self._reading_head = True
        self._head_bytes = 0
        self.idle_since = time.monotonic()
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._refuse, TIMED_OUT)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse(self, answer: bytes) -> None:
        self._stop_head_timer()
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()

    def _live(self) -> int:
        return sum(1 for c in self.connections if not c.transport.is_closing())

    def _idle(self) -> bool:
        busy = self.cycle is not None and not self.cycle.response_complete
        return not busy and not self.transport.is_closing()

    def _make_room(self) -> bool:
        """Close the connection idle the longest (not this one); whether there was one."""
        idle = [
            c
            for c in self.connections
            if c is not self and isinstance(c, GuardedProtocol) and c._idle()
        ]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.idle_since)
        oldest._stop_head_timer()
        oldest.transport.close()
        return True


def limits_of(settings: Settings) -> ServerLimits:
    """The limits ``settings`` describe (``VELVETROPE_HEADER_TIMEOUT`` ...)."""
    return ServerLimits(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        keep_alive_timeout=settings.keep_alive_timeout,
        max_connections=settings.max_connections,
        max_header_bytes=settings.max_header_bytes,
    )
