"""Verifying internal JWTs inside a service behind the gateway, without any framework.

:class:`InternalTokenVerifier` checks a token the edge minted: the strict JOSE checks of
:func:`velvetrope.core.tokens.codec.decode_compact` (``typ`` must be
``vr-internal+jwt``, the key must be one the gateway's JWKS publishes, one algorithm per
key), then the claims (``iss``, this service's ``aud`` exactly, the lifetime), then the
revoked sessions a :class:`~velvetrope.integrations.revocations.RevokedSessions` heard
about, if there is one. A browser's access token (``at+jwt``, another key ring), a token
for another audience, an expired one and a forged one all fail (HYB-07).

The JWKS (``/auth/gateway/jwks.json`` on any velvetrope node) is cached:

* refreshed every ``refresh_every``; a ``kid`` it does not know triggers a refetch, at
  most one per ``refetch_every`` (a flood of tokens naming made-up keys cannot turn
  into a flood of fetches);
* when it cannot be fetched, the keys already known keep verifying for at most
  ``keep_keys_for`` after the last successful fetch; past that every token is refused
  with :class:`~velvetrope.errors.StoreUnavailable` (fail closed, 503). Each failed
  fetch is logged at WARNING on the ``velvetrope.integrations`` logger, with the URL
  and the cause, and kept in :attr:`InternalTokenVerifier.last_error`.

Arguments are checked when the verifier is made: a service with an empty issuer or
audience, or a JWKS URL that is not http(s), would otherwise start and refuse every
token with nothing to say why.

``verify`` is for asyncio services, ``verify_sync`` for WSGI ones; both share the cache.

Verified tokens are remembered (at most ``cache_size``, oldest first out, each until its
``exp``): the edge reuses a token for most of its life, so a service checks each
signature once, and on every request only the expiry and the revocations.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from velvetrope.clock import Clock, system_clock
from velvetrope.core.gateway.claims import (
    INTERNAL_TYP,
    InternalClaims,
    validate_internal_claims,
)
from velvetrope.core.tokens import codec
from velvetrope.core.tokens.codec import Algorithm, Jwk
from velvetrope.errors import InvalidToken, StoreUnavailable

__all__ = ["InternalTokenVerifier", "RevocationCheck"]

_ALGORITHMS: tuple[Algorithm, ...] = ("EdDSA", "ES256", "RS256")
_MAX_JWKS_BYTES = 64 * 1024
_MAX_KEYS = 32
_PRIVATE = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_MAX_LEEWAY = timedelta(minutes=5)

_logger = logging.getLogger("velvetrope.integrations")

RevocationCheck = Callable[[InternalClaims], bool]
"""Whether verified claims belong to a revoked session (``RevokedSessions.is_revoked``)."""


def parse_jwks(document: object) -> dict[str, tuple[Jwk, Algorithm]]:
    """The public keys of a JWKS, by ``kid``, each with its one algorithm.

    Keys without a ``kid``, with an algorithm other than EdDSA/ES256/RS256 or carrying
    private members are left out (a service never needs a private key).

    Raises:
        ValueError: The document is not a JWKS.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    found: dict[str, tuple[Jwk, Algorithm]] = {}
    for entry in document["keys"][:_MAX_KEYS]:
        if not isinstance(entry, dict) or _PRIVATE & set(entry):
            continue
        kid, alg = entry.get("kid"), entry.get("alg")
        if not isinstance(kid, str) or alg not in _ALGORITHMS:
            continue
        chosen = next(a for a in _ALGORITHMS if a == alg)
        public = {k: v for k, v in entry.items() if k not in {"kid", "alg", "use", "key_ops"}}
        try:
            found[kid] = (codec.jwk_from_json(json.dumps(public), chosen), chosen)
        except (ValueError, TypeError, KeyError):
            continue
    return found


def _redacted(url: str) -> str:
    """``url`` without its user name and password, which never reach logs or errors."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "(an unparsable URL)"
    host = f"[{host}]" if ":" in host else host
    netloc = f"***@{host}" + (f":{port}" if port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _check_jwks_url(url: str) -> None:
    """Raise unless ``url`` is an absolute http(s) URL with a host.

    Raises:
        ValueError: Naming ``jwks_url`` and what is wrong with it.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if (
        parts is None
        or parts.scheme.lower() not in {"http", "https"}
        or not host
        or any(c.isspace() for c in url)
    ):
        raise ValueError(
            f"jwks_url must be an absolute http:// or https:// URL, such as "
            f"https://auth.internal/auth/gateway/jwks.json; got {_redacted(url)[:100]!r}"
        )


def _check_name(argument: str, value: str) -> None:
    if not value or value != value.strip():
        raise ValueError(
            f"{argument} must be the exact, non-empty value the gateway uses "
            f"(no surrounding spaces); got {value[:100]!r}"
        )


def _describe(exc: Exception) -> str:
    """The cause of a failed fetch, in a few words (an HTTP status, or the error)."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


class InternalTokenVerifier:
    """Verifies the gateway's internal tokens for one service (one audience)."""

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        leeway: timedelta = timedelta(seconds=5),
        refresh_every: timedelta = timedelta(minutes=5),
        refetch_every: timedelta = timedelta(seconds=10),
        keep_keys_for: timedelta = timedelta(minutes=15),
        revoked: RevocationCheck | None = None,
        fetch_timeout: float = 2.0,
        cache_size: int = 10_000,
        now: Clock = system_clock,
        transport: httpx.AsyncBaseTransport | None = None,
        sync_transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Args:
        jwks_url: The gateway's JWKS (``https://auth.internal/auth/gateway/jwks.json``).
        issuer: The ``iss`` the gateway puts in its tokens (exact).
        audience: This service's name, as the proxy passes it for its location (exact).
        leeway: Clock skew allowed on ``exp``/``nbf``/``iat``.
        refresh_every: How often the JWKS is fetched again in any case.
        refetch_every: The least time between fetches caused by unknown ``kid`` values.
        keep_keys_for: How long known keys keep verifying while the JWKS cannot be
            fetched; then every token is refused (fail closed).
        revoked: A revocation check (``RevokedSessions.is_revoked``), or ``None``.
        fetch_timeout: Seconds a JWKS fetch may take.
        cache_size: Verified tokens remembered (0: every request checks the signature).
        now: The clock.
        transport: The httpx transport for async fetches (tests, unix sockets).
        sync_transport: The httpx transport for ``verify_sync`` fetches.

        Raises:
            ValueError: An argument is out of bounds; the message names it.
        """
        _check_jwks_url(jwks_url)
        _check_name("issuer", issuer)
        _check_name("audience", audience)
        if not timedelta(0) <= leeway <= _MAX_LEEWAY:
            raise ValueError("leeway must be between 0 and 5 minutes")
        if refresh_every <= timedelta(0):
            raise ValueError("refresh_every must be positive")
        if not timedelta(0) < refetch_every <= refresh_every:
            # 0 would let tokens naming made-up keys turn into a flood of fetches.
            raise ValueError("refetch_every must be positive and at most refresh_every")
        if keep_keys_for < refresh_every:
            raise ValueError("keep_keys_for must be at least refresh_every")
        if not (math.isfinite(fetch_timeout) and fetch_timeout > 0):
            raise ValueError("fetch_timeout must be a positive number of seconds")
        if cache_size < 0:
            raise ValueError("cache_size must be 0 or more")
        self.jwks_url = jwks_url
        self._shown_url = _redacted(jwks_url)
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self._refresh_every = refresh_every
        self._refetch_every = refetch_every
        self._keep_for = keep_keys_for
        self._revoked = revoked
        self._timeout = fetch_timeout
        self._now = now
        self._transport = transport
        self._sync_transport = sync_transport
        self._keys: dict[str, tuple[Jwk, Algorithm]] = {}
        self._fetched_at: datetime | None = None  # the last successful fetch
        self._tried_at: datetime | None = None  # the last attempt of any kind
        self._alock: asyncio.Lock | None = None
        self._lock = threading.Lock()
        self.fetches = 0
        self.last_error: str | None = None
        """Why the latest failed JWKS fetch failed (kept after later successes)."""
        self.last_error_at: datetime | None = None
        self._cache_size = cache_size
        self._verified: OrderedDict[str, InternalClaims] = OrderedDict()

    # --- the key cache ---------------------------------------------------------------

    def _due(self, now: datetime, *, unknown_kid: bool) -> bool:
        if self._tried_at is not None and now - self._tried_at < self._refetch_every:
            return False  # rate limit: whatever the reason, one attempt per interval
        if unknown_kid or self._fetched_at is None:
            return True
        return now - self._fetched_at >= self._refresh_every

    def _accept(self, body: bytes) -> None:
        if len(body) > _MAX_JWKS_BYTES:
            raise ValueError("the JWKS is too large")
        self._keys = parse_jwks(json.loads(body))
        self._fetched_at = self._now()

    def _failed(self, exc: Exception) -> None:
        """Record and log a failed fetch; the keys already known stay (see _usable)."""
        cause = _describe(exc)
        self.last_error, self.last_error_at = cause, self._now()
        if self._fetched_at is None:
            consequence = "no keys are known, so every token is refused"
        else:
            until = self._fetched_at + self._keep_for
            consequence = (
                f"the {len(self._keys)} known keys are used until "
                f"{until.isoformat(timespec='seconds')}, then every token is refused"
            )
        _logger.warning(
            "cannot fetch the gateway's JWKS from %s (%s); %s",
            self._shown_url,
            cause,
            consequence,
        )

    @property
    def fetched_at(self) -> datetime | None:
        """When the JWKS was last fetched successfully (for diagnostics)."""
        return self._fetched_at

    def _usable(self) -> None:
        """Raise unless the keys are fresh enough to verify with (fail closed)."""
        fetched = self._fetched_at
        if fetched is None or self._now() - fetched > self._keep_for:
            raise StoreUnavailable("the gateway's JWKS cannot be fetched; tokens are refused")

    def _lookup(self, kid: str) -> tuple[Jwk, Algorithm] | None:
        return self._keys.get(kid)

    async def _refresh(self, *, unknown_kid: bool) -> None:
        if self._alock is None:
            self._alock = asyncio.Lock()
        async with self._alock:  # one fetch at a time; the rest see its result
            now = self._now()
            if not self._due(now, unknown_kid=unknown_kid):
                return
            self._tried_at = now
            self.fetches += 1
            try:
                async with httpx.AsyncClient(
                    transport=self._transport, timeout=self._timeout
                ) as http:
                    response = await http.get(self.jwks_url)
                response.raise_for_status()
                self._accept(response.content)
            except (httpx.HTTPError, ValueError) as exc:
                self._failed(exc)  # keep what we have; _usable decides whether it counts

    def _refresh_sync(self, *, unknown_kid: bool) -> None:
        with self._lock:
            now = self._now()
            if not self._due(now, unknown_kid=unknown_kid):
                return
            self._tried_at = now
            self.fetches += 1
            try:
                with httpx.Client(transport=self._sync_transport, timeout=self._timeout) as http:
                    response = http.get(self.jwks_url)
                response.raise_for_status()
                self._accept(response.content)
            except (httpx.HTTPError, ValueError) as exc:
                self._failed(exc)

    # --- verification ------------------------------------------------------------------

    def _check(self, token: str) -> InternalClaims:
        claims = self._verified.get(token)
        if claims is None:
            decoded = codec.decode_compact(token, self._lookup, typ=INTERNAL_TYP)
            claims = validate_internal_claims(
                decoded.claims,
                issuer=self.issuer,
                audience=self.audience,
                now=self._now(),
                leeway=self.leeway,
            )
            if self._cache_size:
                self._verified[token] = claims
                if len(self._verified) > self._cache_size:
                    self._verified.popitem(last=False)
        elif self._now() >= claims.expires_at + self.leeway:
            self._verified.pop(token, None)
            raise InvalidToken("expired")
        if self._revoked is not None and self._revoked(claims):
            raise InvalidToken("session revoked")
        return claims

    def _fast(self, token: str) -> InternalClaims | None:
        """A token verified before, still usable, when the keys still count; else ``None``."""
        if token not in self._verified or self._due(self._now(), unknown_kid=False):
            return None
        self._usable()
        return self._check(token)

    async def verify(self, token: str) -> InternalClaims:
        """The claims of a valid internal token for this service.

        Raises:
            InvalidToken: Not one (forged, another kind or audience, expired, revoked).
            StoreUnavailable: The JWKS could not be fetched for too long (fail closed).
        """
        known = self._fast(token)
        if known is not None:
            return known
        if self._due(self._now(), unknown_kid=False):
            await self._refresh(unknown_kid=False)
        self._usable()
        try:
            return self._check(token)
        except InvalidToken as exc:
            if exc.reason != "unknown kid" or not self._due(self._now(), unknown_kid=True):
                raise
        await self._refresh(unknown_kid=True)  # a rotation at the gateway
        self._usable()
        return self._check(token)

    def verify_sync(self, token: str) -> InternalClaims:
        """:meth:`verify` for threads (WSGI): the same checks and cache.

        Raises:
            InvalidToken, StoreUnavailable: As :meth:`verify`.
        """
        known = self._fast(token)
        if known is not None:
            return known
        if self._due(self._now(), unknown_kid=False):
            self._refresh_sync(unknown_kid=False)
        self._usable()
        try:
            return self._check(token)
        except InvalidToken as exc:
            if exc.reason != "unknown kid" or not self._due(self._now(), unknown_kid=True):
                raise
        self._refresh_sync(unknown_kid=True)
        self._usable()
        return self._check(token)

    def known_kids(self) -> Mapping[str, Any]:
        """The key ids the verifier trusts now (for diagnostics)."""
        return {kid: alg for kid, (_, alg) in self._keys.items()}
