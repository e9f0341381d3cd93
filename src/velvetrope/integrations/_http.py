"""What every integration shares: reading the credential, and the refusal's shape."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from velvetrope.errors import AuthError, InvalidToken, NotAuthenticated, StoreUnavailable

__all__ = ["EDGE_COOKIE", "Refusal", "bearer_token", "refusal"]

EDGE_COOKIE = re.compile(rb"(?:^|;)\s*(?:__Host-)?velvetrope-[a-z]+=", re.IGNORECASE)
_BEARER = re.compile(rb"Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)")
CHALLENGE = 'Bearer realm="velvetrope-internal"'


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The internal token of a request: exactly one ``Authorization: Bearer`` header.

    Raises:
        NotAuthenticated: No token, more than one ``Authorization`` header, or a request
            carrying velvetrope's edge cookies (the proxy must strip them: a service never
            takes the browser's credential).
        InvalidToken: The header is not a bearer JWS.
    """
    found: list[bytes] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"authorization":
            found.append(value)
        elif lowered == b"cookie" and EDGE_COOKIE.search(value):
            raise NotAuthenticated(
                "This service takes the gateway's internal token only; the edge cookie "
                "must not reach it (strip it at the proxy)."
            )
    if not found:
        raise NotAuthenticated("This service is reached through the gateway only.")
    if len(found) > 1:
        raise NotAuthenticated("Send exactly one Authorization header.")
    matched = _BEARER.fullmatch(found[0].strip())
    if matched is None:
        raise InvalidToken("not a bearer JWS")
    return matched.group(1).decode("ascii")


Refusal = tuple[int, bytes, list[tuple[bytes, bytes]]]


def refusal(exc: AuthError) -> Refusal:
    """The HTTP status, JSON body and headers for ``exc`` (velvetrope's error shape)."""
    if isinstance(exc, StoreUnavailable):
        status, challenge = 503, None
    elif isinstance(exc, InvalidToken):
        status, challenge = 401, f'{CHALLENGE}, error="invalid_token"'
    elif isinstance(exc, NotAuthenticated):
        status, challenge = 401, CHALLENGE
    else:
        status, challenge = 403, None
    detail = exc.detail
    body = json.dumps({"error": exc.code, "detail": detail}).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
    ]
    if challenge is not None:
        headers.append((b"www-authenticate", challenge.encode("latin-1")))
    if status == 503:
        headers.append((b"retry-after", b"5"))
    return status, body, headers
