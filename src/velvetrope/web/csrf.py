"""CSRF defence on the web side (checklist 1.8): where the request came from, and the token.

Two checks, both on by default, for every unsafe request (POST, PUT, PATCH, DELETE)
that a cookie authenticates; requests with ``Authorization: Bearer`` are exempt,
since a browser never attaches that header on its own:

1. **Where from** (CSRF-05/06/07, :class:`OriginPolicy`): ``Sec-Fetch-Site`` must be
   ``same-origin`` or ``none``; without it, ``Origin`` (else the ``Referer``'s origin)
   must equal the configured public origin exactly, never one derived from ``Host``.
   Origins in the CORS allowlist pass this check (the token still guards them).
   A cookie-carrying request with none of the three headers is refused: browsers send
   them, so only a non-browser client omits them, and it can send ``Origin`` itself.
2. **The token** (CSRF-01..04, :class:`~velvetrope.core.csrf.CsrfTokens`): a signed
   double-submit value bound to the session (or, for JWT-in-cookie sign-ins, to the
   refresh family), sent in the ``X-CSRF-Token`` header or the ``csrf_token`` form field.

Sign-in forms have no session yet: they carry a token bound to a random pre-session
value held in the ``__Host-velvetrope-csrf`` cookie (login CSRF). JSON sign-ins need no
token: a cross-site page cannot send ``application/json`` without a CORS preflight,
and the origin check applies to them too.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope

from velvetrope.core.csrf import (
    CsrfTokens,
    family_binding,
    presession_binding,
    session_binding,
)
from velvetrope.core.principal import Principal
from velvetrope.errors import CsrfFailed
from velvetrope.web.transports import CookieTransport

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SAFE_METHODS",
    "CsrfGuard",
    "OriginPolicy",
    "Presession",
    "form_token",
]

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
PRESESSION_LIFETIME = timedelta(hours=12)
MAX_FORM_BYTES = 64 * 1024
_HEADER_KEY = CSRF_HEADER.lower().encode("latin-1")
_FORM = b"application/x-www-form-urlencoded"

CSRF_MISSING_DETAIL = (
    "This request needs a CSRF token: send the csrf_token from POST /auth/login or "
    "GET /auth/csrf in the X-CSRF-Token header (or the csrf_token form field)."
)
BAD_PRESESSION = (
    "The sign-in form has expired or did not come from this site; reload the page and "
    "try again (forms need the csrf_token field and the __Host-velvetrope-csrf cookie)."
)


class OriginPolicy:
    """Decides whether an unsafe request may have come from the configured origin."""

    def __init__(self, origin: str, trusted: Iterable[str] = ()) -> None:
        """Args:
        origin: The public origin (``VELVETROPE_PUBLIC_ORIGIN``), never the ``Host`` header.
        trusted: Other exact origins allowed to send credentialed requests (CORS allowlist).
        """
        self.origin = origin
        self._origin = origin.encode("latin-1")
        self._trusted = frozenset(o.encode("latin-1") for o in trusted) - {self._origin}
        self._allowed = self._trusted | {self._origin}

    def refusal(self, scope: Scope, *, carries_cookie: bool) -> str | None:
        """``None`` if the request may proceed, else a sentence saying why it may not.

        Args:
            scope: The request.
            carries_cookie: Whether it carries one of our credential cookies; only then
                is the absence of every browser header a reason to refuse.
        """
        fetch_site, origin, referer, repeated = _browser_headers(scope)
        if repeated is not None:  # which line counts would be a guess; no browser needs one
            return f"The request repeats the {repeated} header; a browser sends it once."
        return self._refusal(fetch_site, origin, referer, carries_cookie=carries_cookie)

    def _refusal(
        self,
        fetch_site: bytes | None,
        origin: bytes | None,
        referer: bytes | None,
        *,
        carries_cookie: bool,
    ) -> str | None:
        if fetch_site is not None:
            if fetch_site in (b"same-origin", b"none") or origin in self._trusted:
                return None
            return (
                f"The browser marked this request {fetch_site.decode('latin-1')} "
                f"(Sec-Fetch-Site); requests that change state must come from {self.origin}."
            )
        if origin is None and referer is not None:  # Referer: the fallback (CSRF-06)
            origin = _origin_of(referer) or b"an unreadable Referer"
        if origin is not None:
            if origin in self._allowed:
                return None
            shown = origin.decode("latin-1")[:100]
            return f"Requests that change state must come from {self.origin}, not {shown}."
        if carries_cookie:
            return (
                "A request that carries a session cookie must say where it comes from: "
                f"browsers send Origin; other clients send Origin: {self.origin} or use "
                "Authorization: Bearer."
            )
        return None


_BROWSER_HEADERS = {b"sec-fetch-site": "Sec-Fetch-Site", b"origin": "Origin", b"referer": "Referer"}


def _browser_headers(
    scope: Scope,
) -> tuple[bytes | None, bytes | None, bytes | None, str | None]:
    """``Sec-Fetch-Site``, ``Origin``, ``Referer``, and the name of one sent twice, if any."""
    found: dict[bytes, bytes] = {}
    repeated = None
    for name, value in scope["headers"]:
        if name in _BROWSER_HEADERS:
            if name in found:
                repeated = _BROWSER_HEADERS[name]
            found[name] = value
    return found.get(b"sec-fetch-site"), found.get(b"origin"), found.get(b"referer"), repeated


def _origin_of(url: bytes) -> bytes | None:
    try:
        parts = urlsplit(url.decode("latin-1"))
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower().encode("latin-1")


def header_token(scope: Scope) -> str | None:
    """The ``X-CSRF-Token`` header, if sent; repeated lines are joined (RFC 9110 §5.3),
    which no token matches."""
    values = [value for name, value in scope["headers"] if name == _HEADER_KEY]
    return b", ".join(values).decode("latin-1") if values else None


def _is_form(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bool(value.split(b";", 1)[0].strip().lower() == _FORM)
    return False


def _field(body: bytes) -> str | None:
    try:
        pairs = parse_qsl(body.decode("utf-8"), max_num_fields=64, errors="strict")
    except ValueError:  # not UTF-8, or too many fields: the body reader reports it
        return None
    values = [value for name, value in pairs if name == CSRF_FIELD]
    return values[0] if len(values) == 1 else None


async def form_token(connection: HTTPConnection) -> str | None:
    """The token a request submits: the header, else a form body's ``csrf_token`` field.

    Reading the body here is free for the route: Starlette keeps it on the request.
    """
    submitted = header_token(connection.scope)
    if submitted is not None or not isinstance(connection, Request):
        return submitted
    if not _is_form(connection.scope):
        return None
    return _field(await connection.body())


async def buffered_form_token(scope: Scope, receive: Receive) -> tuple[str | None, Receive]:
    """:func:`form_token` for pure ASGI: reads the body and returns a ``receive`` that replays it.

    Raises:
        CsrfFailed: The form is larger than :data:`MAX_FORM_BYTES`.
    """
    submitted = header_token(scope)
    if submitted is not None or not _is_form(scope):
        return submitted, receive
    chunks: list[bytes] = []
    size = 0
    cut_off: Message | None = None  # a disconnect before the last chunk
    while True:
        message = await receive()
        if message["type"] != "http.request":
            cut_off = message
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise CsrfFailed("The form is too large to carry a CSRF token.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    # A cut-off body is replayed as unfinished, then the disconnect: the app must not
    # take part of a form for all of it, nor its token for a checked one.
    body = b"".join(chunks)
    pending: list[Message] = [
        {"type": "http.request", "body": body, "more_body": cut_off is not None}
    ]
    if cut_off is not None:
        pending.append(cut_off)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return (None if cut_off is not None else _field(body)), replay


@dataclass(frozen=True, slots=True)
class Presession:
    """A sign-in form's token, and the pre-session cookie value to set if it is new."""

    token: str
    new_nonce: str | None


class CsrfGuard:
    """Mints and checks the CSRF tokens of one :class:`~velvetrope.web.extension.Velvetrope`."""

    def __init__(
        self, tokens: Callable[[], CsrfTokens], policy: OriginPolicy, *, secure: bool
    ) -> None:
        """Args:
        tokens: Gives the started service's token maker (it exists once the service
            has loaded the shared secret).
        policy: Where unsafe requests may come from.
        secure: Whether cookies get ``Secure`` and the ``__Host-`` prefix.
        """
        self._tokens = tokens
        self.policy = policy
        self.cookie = CookieTransport(secure=secure, base_name="velvetrope-csrf", samesite="strict")

    @property
    def tokens(self) -> CsrfTokens:
        """The token maker (raises ``RuntimeError`` before the service starts)."""
        return self._tokens()

    @staticmethod
    def binding(principal: Principal) -> str:
        """What ``principal``'s tokens are bound to: its session, or its refresh family."""
        if principal.session is not None:
            return session_binding(principal.session.id_digest)
        return family_binding(principal.handle)

    def token_for(self, principal: Principal) -> str:
        """A new token for a cookie-authenticated ``principal``."""
        return self.tokens.issue(self.binding(principal))

    def token_for_family(self, family_id: str) -> str:
        """A new token for a JWT-in-cookie sign-in known only by its refresh cookie."""
        return self.tokens.issue(family_binding(family_id))

    def check(self, scope: Scope, principal: Principal, submitted: str | None) -> None:
        """Refuse an unsafe request authenticated by an ambient credential (a cookie)
        that is cross-site or lacks the token. Callers decide that the credential is
        ambient (:meth:`Authenticator.is_ambient`); safe methods always pass.

        Raises:
            CsrfFailed: With a sentence saying what is missing (403 ``csrf_failed``).
        """
        if scope.get("method", "GET") in SAFE_METHODS:
            return
        reason = self.policy.refusal(scope, carries_cookie=True)
        if reason is not None:
            raise CsrfFailed(reason)
        if not self.tokens.verify(self.binding(principal), submitted):
            raise CsrfFailed(CSRF_MISSING_DETAIL)

    def check_family(self, scope: Scope, family_id: str, submitted: str | None) -> None:
        """:meth:`check` for a request that only a refresh cookie authenticates."""
        reason = self.policy.refusal(scope, carries_cookie=True)
        if reason is not None:
            raise CsrfFailed(reason)
        if not self.tokens.verify(family_binding(family_id), submitted):
            raise CsrfFailed(CSRF_MISSING_DETAIL)

    def presession(self, connection: HTTPConnection) -> Presession:
        """A token for a sign-in or sign-up form; a new pre-session value when there is none."""
        nonce = self.cookie.read(connection)
        fresh = None
        if nonce is None or len(nonce) != 43:
            nonce = fresh = secrets.token_urlsafe(32)
        return Presession(self.tokens.issue(presession_binding(nonce)), fresh)

    def remember(self, response: Response, presession: Presession) -> None:
        """Set the pre-session cookie on ``response`` if :meth:`presession` made a new one."""
        if presession.new_nonce is not None:
            self.cookie.write(response, presession.new_nonce, max_age=PRESESSION_LIFETIME)

    def check_presession(self, connection: HTTPConnection, submitted: str | None) -> None:
        """Refuse a form sign-in whose token does not match the pre-session cookie.

        Raises:
            CsrfFailed: The cookie is missing or the token was not minted for it.
        """
        reason = self.policy.refusal(connection.scope, carries_cookie=True)
        if reason is not None:
            raise CsrfFailed(reason)
        nonce = self.cookie.read(connection)
        if nonce is None or not self.tokens.verify(presession_binding(nonce), submitted):
            raise CsrfFailed(BAD_PRESESSION)
