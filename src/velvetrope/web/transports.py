"""How a credential travels. The strategy (what the credential is) does not care.

``CookieTransport`` carries the session ID in a host-only cookie (COOK-01..06):
``__Host-`` prefix, ``Secure``, ``HttpOnly``, ``SameSite=Lax``, ``Path=/``, no
``Domain``, ``Max-Age`` never beyond the session's absolute lifetime. Browsers accept
``Secure`` cookies on ``http://localhost`` and ``http://127.0.0.1``, so the same
attributes work in local development; only with the explicit development flag on
another plain-http host are ``Secure`` and the prefix dropped.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Scope

from velvetrope.errors import InvalidToken

__all__ = ["CLEAR_SITE_DATA", "BearerTransport", "CookieTransport"]

CLEAR_SITE_DATA = '"cookies", "storage"'
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CookieTransport:
    """Reads and writes one credential cookie (by default the session's)."""

    def __init__(
        self,
        *,
        secure: bool = True,
        base_name: str = "velvetrope-session",
        samesite: Literal["lax", "strict"] = "lax",
    ) -> None:
        self.secure = secure
        self.name = f"__Host-{base_name}" if secure else base_name
        self.samesite: Literal["lax", "strict"] = samesite
        self._prefix = self.name.encode("latin-1") + b"="

    def read(self, connection: HTTPConnection) -> str | None:
        """Return the session ID the client sent, if any (never from the URL, SESS-07)."""
        return self.read_scope(connection.scope)

    def read_scope(self, scope: Scope) -> str | None:
        """:meth:`read` on a raw ASGI scope: scans the ``Cookie`` headers, parses nothing else.

        Runs on every request, so it avoids building Starlette's full cookie dict.
        """
        for name, value in scope["headers"]:
            if name == b"cookie":
                for raw_part in value.split(b";"):
                    part = raw_part.strip()
                    if part.startswith(self._prefix):
                        found = part[len(self._prefix) :].strip(b'"')
                        return found.decode("latin-1") or None
        return None

    def write(self, response: Response, value: str, *, max_age: timedelta) -> None:
        """Set the cookie on ``response``."""
        response.set_cookie(
            self.name,
            value,
            max_age=max(0, int(max_age.total_seconds())),
            path="/",
            secure=self.secure,
            httponly=True,
            samesite=self.samesite,
        )

    def clear(self, response: Response) -> None:
        """Expire the cookie (same name, path and attributes; COOK-08)."""
        response.set_cookie(
            self.name,
            "",
            max_age=0,
            expires=_EPOCH,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite=self.samesite,
        )


_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9._~+/-]+=*)")


class BearerTransport:
    """Reads an access token from ``Authorization: Bearer`` only (RFC 6750 §2.1, JWT-18).

    Never from the query string or a form body: those leak into logs and referrers.
    """

    def read(self, connection: HTTPConnection) -> str | None:
        """Return the bearer token, ``None`` if the request has no Bearer credential.

        Raises:
            InvalidToken: A Bearer ``Authorization`` header that is malformed.
        """
        return self.read_scope(connection.scope)

    def read_scope(self, scope: Scope) -> str | None:
        """:meth:`read` on a raw ASGI scope."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
                if not header[:7].lower().startswith("bearer"):
                    return None
                match = _BEARER.fullmatch(header)
                if match is None:
                    raise InvalidToken("malformed Authorization header")
                return match.group(1)
        return None
