"""How a credential travels. The strategy (what the credential is) does not care.

A :class:`Transport` reads a credential from a request (a
:class:`~velvetrope.core.credentials.Presented`: the credential, and for bound
credentials the proof that binds it to this request), writes it to a response and
clears it, and says whether the browser sends it on its own (``ambient``: a cookie is,
so unsafe requests it authenticates need the CSRF checks; an ``Authorization`` header
is not, since a browser never attaches one by itself) and which ``WWW-Authenticate``
challenge a refusal of it carries.

``CookieTransport`` carries the session ID in a host-only cookie (COOK-01..06):
``__Host-`` prefix, ``Secure``, ``HttpOnly``, ``SameSite=Lax``, ``Path=/``, no
``Domain``, ``Max-Age`` never beyond the session's absolute lifetime. Browsers accept
``Secure`` cookies on ``http://localhost`` and ``http://127.0.0.1``, so the same
attributes work in local development; only with the explicit development flag on
another plain-http host are ``Secure`` and the prefix dropped.

``BoundCookieTransport`` is the session cookie that also reads the short-lived bound
cookie of a device-bound session (DBSC) as the proof. ``DPoPTransport`` reads
``Authorization: DPoP <token>`` and the ``DPoP`` proof header (RFC 9449 section 7),
with the method and the URL on the configured public origin that the proof must name.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Scope

from velvetrope.core.binding.dpop import dpop_challenge
from velvetrope.core.credentials import Presented
from velvetrope.core.tokens.codec import PROOF_ALGORITHMS
from velvetrope.errors import InvalidDPoPProof, InvalidToken

__all__ = [
    "CLEAR_SITE_DATA",
    "REALM",
    "BearerTransport",
    "BoundCookieTransport",
    "CookieTransport",
    "DPoPTransport",
    "Transport",
    "request_htu",
]

CLEAR_SITE_DATA = '"cookies", "storage"'
REALM = "velvetrope"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Transport(Protocol):
    """How a credential travels between client and server.

    Attributes:
        name: The cookie or header that carries it.
        ambient: Whether browsers attach it to requests on their own (cookies). Unsafe
            requests authenticated by an ambient credential must pass the CSRF checks.
        challenge: The RFC 7235 challenge a client is sent when this credential is
            refused (``Bearer realm="velvetrope"``), or ``None`` (cookies have no scheme).
    """

    name: str
    ambient: bool
    challenge: str | None

    def read_scope(self, scope: Scope) -> Presented | None:
        """The credential in the request, or ``None`` if it carries none.

        Raises:
            InvalidToken: A credential is there but malformed (a way in may set the
                challenge its refusal carries; see ``Authenticator``).
        """
        ...

    def write(self, response: Response, value: str, *, max_age: timedelta) -> None:
        """Hand ``value`` to the client in ``response``."""
        ...

    def clear(self, response: Response) -> None:
        """Tell the client in ``response`` to forget the credential (where it can)."""
        ...


class CookieTransport:
    """Reads and writes one credential cookie (by default the session's). Ambient."""

    ambient = True
    challenge: str | None = None

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
        return self.value_of(connection.scope)

    def read_scope(self, scope: Scope) -> Presented | None:
        """The cookie's value as the presented credential (see :meth:`value_of`)."""
        value = self.value_of(scope)
        return None if value is None else Presented(value)

    def value_of(self, scope: Scope) -> str | None:
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

    def write(self, response: Response, value: str, *, max_age: timedelta | None) -> None:
        """Set the cookie on ``response``; ``max_age=None`` makes it a browser-session
        cookie (no ``Max-Age``: it ends when the browser does)."""
        response.set_cookie(
            self.name,
            value,
            max_age=None if max_age is None else max(0, int(max_age.total_seconds())),
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
    Not ambient: a browser never sends the header on its own, so no CSRF check applies.
    """

    name = "Authorization"
    ambient = False

    def __init__(self, *, realm: str = REALM) -> None:
        self.challenge: str | None = f'Bearer realm="{realm}"'

    def read(self, connection: HTTPConnection) -> str | None:
        """Return the bearer token, ``None`` if the request has no Bearer credential.

        Raises:
            InvalidToken: A Bearer ``Authorization`` header that is malformed.
        """
        presented = self.read_scope(connection.scope)
        return None if presented is None else presented.value

    def read_scope(self, scope: Scope) -> Presented | None:
        """:meth:`read` on a raw ASGI scope."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
                if not header[:7].lower().startswith("bearer"):
                    return None
                match = _BEARER.fullmatch(header)
                if match is None:
                    raise InvalidToken("malformed Authorization header")
                return Presented(match.group(1))
        return None

    def write(self, response: Response, value: str, *, max_age: timedelta) -> None:
        """Bearer tokens travel in the token endpoint's JSON body, never in a header the
        server sets.

        Raises:
            TypeError: Always.
        """
        raise TypeError("bearer tokens are returned in the token response body")

    def clear(self, response: Response) -> None:
        """Nothing to clear: the client holds the token; revoking it is the strategy's job."""


class BoundCookieTransport(CookieTransport):
    """The session cookie, with the device-bound session's bound cookie as its proof."""

    def __init__(self, *, secure: bool = True, bound: CookieTransport) -> None:
        super().__init__(secure=secure)
        self.bound = bound

    def read_scope(self, scope: Scope) -> Presented | None:
        """The session ID, and the bound cookie (``proof``) when the browser sent one.

        One pass over the ``Cookie`` headers for both (the first of each name counts,
        as in :meth:`value_of`): this runs on every browser request.
        """
        mine, bound = self._prefix, self.bound._prefix
        value = proof = None
        for name, header in scope["headers"]:
            if name != b"cookie":
                continue
            for raw_part in header.split(b";"):
                part = raw_part.strip()
                if value is None and part.startswith(mine):
                    value = part[len(mine) :].strip(b'"')
                elif proof is None and part.startswith(bound):
                    proof = part[len(bound) :].strip(b'"')
        if not value:
            return None
        return Presented(value.decode("latin-1"), proof=proof.decode("latin-1") if proof else None)


_DPOP = re.compile(r"[Dd][Pp][Oo][Pp] ([A-Za-z0-9._~+/-]+=*)")


def request_htu(scope: Scope, origin: str) -> str:
    """The URL a DPoP proof for this request must name: the configured public origin
    (never ``Host``) and the request's path as sent, without query or fragment."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else str(scope["path"])
    return origin + path.split("?", 1)[0]


class DPoPTransport:
    """Reads ``Authorization: DPoP <token>`` and its ``DPoP`` proof header (RFC 9449 section 7).

    Not ambient. Its refusals carry the ``DPoP`` challenge (with ``algs``); with no
    credential at all it is only advertised when ``advertise`` is set (the server does
    so when DPoP is required), so bearer clients keep seeing the challenge they know.
    """

    name = "Authorization"
    ambient = False

    def __init__(
        self,
        origin: str,
        *,
        algorithms: tuple[str, ...] = PROOF_ALGORITHMS,
        advertise: bool = False,
    ) -> None:
        """Args:
        origin: The public origin proofs name in ``htu`` (``VELVETROPE_PUBLIC_ORIGIN``).
        algorithms: The proof algorithms the server accepts (for the challenge).
        advertise: Whether a request without any credential is told about DPoP.
        """
        self.origin = origin
        self.challenge: str | None = dpop_challenge(algorithms) if advertise else None
        self._invalid_token = dpop_challenge(algorithms, "invalid_token")
        self._invalid_proof = dpop_challenge(algorithms, "invalid_dpop_proof")

    def read_scope(self, scope: Scope) -> Presented | None:
        """The token, its proof, and the method and URL the proof must name.

        Raises:
            InvalidToken: A malformed ``Authorization: DPoP`` header.
            InvalidDPoPProof: No ``DPoP`` header, or more than one (section 4.3).
        """
        authorization: bytes | None = None
        proofs: list[bytes] = []
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:
                authorization = value
            elif name == b"dpop":
                proofs.append(value)
        if authorization is None or authorization[:5].lower() != b"dpop ":
            return None
        match = _DPOP.fullmatch(authorization.decode("latin-1"))
        if match is None:
            raise InvalidToken("malformed Authorization header").challenged(self._invalid_token)
        if len(proofs) != 1:
            raise InvalidDPoPProof("one DPoP header needed").challenged(self._invalid_proof)
        return Presented(
            match.group(1),
            proof=proofs[0].decode("latin-1"),
            htm=scope["method"],
            htu=request_htu(scope, self.origin),
        )

    def write(self, response: Response, value: str, *, max_age: timedelta) -> None:
        """DPoP tokens travel in the token endpoint's JSON body.

        Raises:
            TypeError: Always.
        """
        raise TypeError("DPoP-bound tokens are returned in the token response body")

    def clear(self, response: Response) -> None:
        """Nothing to clear: the client holds the token and the key."""
