"""Pure ASGI middleware: request limits and security headers.

Written against raw ASGI rather than ``BaseHTTPMiddleware`` so they add no task or
stream copy to each request (the hot path).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from velvetrope.errors import CsrfFailed, InvalidInput
from velvetrope.web.context import WebContext
from velvetrope.web.csrf import SAFE_METHODS
from velvetrope.web.errors import HeaderTooLarge, PayloadTooLarge, error_response

__all__ = ["OriginCheck", "RequestLimits", "SecurityHeaders"]


class RequestLimits:
    """Refuse oversized cookies (431) and bodies (413) before any route runs (OPS-03).

    A declared ``Content-Length`` over the limit is refused at once; a body without
    one is counted as it streams, and reading past the limit raises
    :class:`PayloadTooLarge`, which the error table turns into a 413.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_cookie_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_cookie = max_cookie_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie_bytes = 0
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookie_bytes += len(value)
            elif name == b"content-length":
                if not value.isdigit():
                    bad = InvalidInput("The Content-Length header is not a number.")
                    await error_response(bad)(scope, receive, send)
                    return
                if int(value) > self.max_body:
                    await error_response(PayloadTooLarge())(scope, receive, send)
                    return
        if cookie_bytes > self.max_cookie:
            await error_response(HeaderTooLarge())(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise PayloadTooLarge
            return message

        return counted


_BASE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
HSTS = b"max-age=63072000; includeSubDomains"


class SecurityHeaders:
    """Add security headers to every response that does not set its own.

    ``Cache-Control: no-store`` is the default (COOK-09): auth responses must never be
    cached. HSTS is added when the service's public origin is https (OPS-02).
    """

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        defaults = [*_BASE_HEADERS, (b"cache-control", b"no-store")]
        defaults.append((b"content-security-policy", API_CSP))
        if hsts:
            defaults.append((b"strict-transport-security", HSTS))
        self._defaults = tuple(defaults)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(_missing(self._defaults, present))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _missing(
    defaults: Iterable[tuple[bytes, bytes]], present: set[bytes]
) -> list[tuple[bytes, bytes]]:
    return [(name, value) for name, value in defaults if name not in present]


class OriginCheck:
    """CSRF-05/06/07 for the whole app: unsafe requests must come from the configured origin.

    The rules are :class:`~velvetrope.web.csrf.OriginPolicy`'s. Requests that carry a
    credential no browser sends on its own (``Authorization: Bearer``, any non-ambient
    way in) are exempt, and a request with no browser header at all passes unless it
    carries one of velvetrope's cookies (a non-browser client).
    Responses to unsafe requests ``Vary`` on ``Sec-Fetch-Site`` and ``Origin`` (CSRF-10).
    """

    def __init__(self, app: ASGIApp, *, context: WebContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        context = self.context
        reason = None
        if not context.token_request(scope):
            carries = context.carries_cookie(scope)
            reason = context.csrf.policy.refusal(scope, carries_cookie=carries)
        if reason is not None:
            await error_response(CsrfFailed(reason))(scope, receive, _varying(send))
            return
        await self.app(scope, receive, _varying(send))


def _varying(send: Send) -> Send:
    async def send_varying(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            headers.append((b"vary", b"Sec-Fetch-Site, Origin"))
            message["headers"] = headers
        await send(message)

    return send_varying
