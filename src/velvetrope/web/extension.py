"""``Velvetrope``: the auth service dressed for ASGI, ready to drop into an app.

::

    from fastapi import Depends, FastAPI
    from velvetrope import Principal, Settings, Velvetrope

    auth = Velvetrope(Settings())
    app = FastAPI(lifespan=auth.lifespan)
    app.include_router(auth.router)          # /auth/* endpoints

    @app.get("/orders")
    async def orders(who: Principal = Depends(auth.principal)) -> dict[str, str]:
        return {"user": who.user_id}
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anyio
from fastapi import APIRouter
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Scope

from velvetrope.core.principal import Principal
from velvetrope.core.service import AuthService, SignIn
from velvetrope.core.tokens.service import TokenPair
from velvetrope.errors import AuthError, CsrfFailed, InvalidToken, NotAuthenticated, OAuthError
from velvetrope.settings import Settings
from velvetrope.stores.records import UserRecord
from velvetrope.web.csrf import SAFE_METHODS, CsrfGuard, OriginPolicy, form_token
from velvetrope.web.schemas import SessionOut
from velvetrope.web.transports import CLEAR_SITE_DATA, BearerTransport, CookieTransport

__all__ = ["PRINCIPAL_KEY", "BrowserSignIn", "PageAuth", "Velvetrope"]

PRINCIPAL_KEY = "velvetrope.principal"
"""Where :class:`~velvetrope.web.guard.AuthMiddleware` leaves the principal (``scope["state"]``)."""

_logger = logging.getLogger("velvetrope")
PURGE_EVERY = 600.0
_Cookie = tuple[CookieTransport, str, timedelta]


@dataclass(frozen=True, slots=True)
class BrowserSignIn:
    """A browser sign-in: who, the CSRF token for the new session, and the cookies to set."""

    user: UserRecord
    principal: Principal
    csrf_token: str
    cookies: tuple[_Cookie, ...]

    def apply(self, response: Response) -> Response:
        """Set the credential cookies on ``response`` and return it."""
        for transport, value, max_age in self.cookies:
            transport.write(response, value, max_age=max_age)
        return response


@dataclass(frozen=True, slots=True)
class PageAuth:
    """Who a page request is from (``None``: nobody) and any renewed cookies to set."""

    principal: Principal | None
    cookies: tuple[_Cookie, ...] = field(default=())

    def apply(self, response: Response) -> Response:
        """Set renewed cookies (JWT-in-cookie mode) on ``response`` and return it."""
        for transport, value, max_age in self.cookies:
            transport.write(response, value, max_age=max_age)
        return response


class Velvetrope:
    """Settings, the auth service, the cookie transport and the ``/auth`` router, together."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        service: AuthService | None = None,
        transport: CookieTransport | None = None,
    ) -> None:
        """Build from ``settings`` (default: the environment).

        Args:
            settings: Configuration; read from ``VELVETROPE_*`` when omitted.
            service: A ready service (tests inject one with a frozen clock or memory stores).
            transport: How the session ID travels; a cookie per ``settings`` by default.

        Raises:
            ConfigurationError, StoreUnavailable: The configured store cannot be opened.
        """
        self.settings = settings or Settings()
        self.service = service or AuthService.from_settings(self.settings)
        secure = self.settings.secure_cookies
        self.transport = transport or CookieTransport(secure=secure)
        self.bearer = BearerTransport()
        self.jwt_cookies = self.settings.browser_credentials == "jwt-cookie"
        self.access_cookie = CookieTransport(secure=secure, base_name="velvetrope-access")
        # RT-08: __Host- forces Path=/, so the refresh cookie reaches every path of this
        # origin; SameSite=Strict keeps it off every cross-site request, and only
        # /auth/refresh, /auth/logout and page loads read it.
        self.refresh_cookie = CookieTransport(
            secure=secure, base_name="velvetrope-refresh", samesite="strict"
        )
        self.csrf = CsrfGuard(
            lambda: self.service.csrf,
            OriginPolicy(self.settings.origin, self.settings.cors_allowlist()),
            secure=secure,
        )
        self._router: APIRouter | None = None

    @property
    def router(self) -> APIRouter:
        """The ``/auth/*`` endpoints and ``/.well-known/jwks.json``, bound to this instance."""
        if self._router is None:
            from velvetrope.web.routes import build_auth_router, build_token_router  # noqa: PLC0415

            self._router = APIRouter()
            self._router.include_router(build_auth_router(self))
            self._router.include_router(build_token_router(self))
        return self._router

    async def principal(self, connection: HTTPConnection) -> Principal:
        """FastAPI dependency: the signed-in caller, or a 401.

        An ``Authorization: Bearer`` header, when present, is the credential (and
        cookies are ignored); otherwise the session cookie (or, in JWT-in-cookie mode,
        the access-token cookie). An unsafe request authenticated by a cookie must also
        pass the CSRF checks (see :mod:`velvetrope.web.csrf`).

        Raises:
            InvalidToken: A bearer token that is not valid (401 ``invalid_token``).
            NotAuthenticated: No credential, or not a live session.
            CsrfFailed: A cookie-authenticated unsafe request without a valid CSRF token,
                or from another origin (403).
            StoreUnavailable: The store did not answer (503; never lets the request through).
        """
        scope = connection.scope
        known = scope.get("state", {}).get(PRINCIPAL_KEY)
        if known is not None:  # AuthMiddleware already checked this request
            return known  # type: ignore[no-any-return]
        principal = await self.authenticate_scope(scope)
        if scope["type"] == "websocket":
            self.check_websocket_origin(scope, principal)
        elif scope["method"] not in SAFE_METHODS and principal.method != "bearer":
            self.csrf.check(scope, principal, await form_token(connection))
        return principal

    def check_websocket_origin(self, scope: Scope, principal: Principal) -> None:
        """Refuse a cookie-authenticated WebSocket upgrade from another origin.

        Browsers send cookies on upgrades from any page and a socket has no CSRF
        token, so the ``Origin`` check is the defence (cross-site WebSocket hijacking).

        Raises:
            CsrfFailed: The upgrade does not come from the configured origin.
        """
        if principal.method == "bearer":
            return
        reason = self.csrf.policy.refusal(scope, carries_cookie=True)
        if reason is not None:
            raise CsrfFailed(reason)

    async def authenticate_scope(self, scope: Scope) -> Principal:
        """The per-request credential check on a raw ASGI scope (CSRF is separate)."""
        token = self.bearer.read_scope(scope)
        if token is not None:
            return await self.service.authenticate_bearer(token)
        if self.jwt_cookies:
            token = self.access_cookie.read_scope(scope)
            if token is None:
                raise NotAuthenticated
            try:
                return await self.service.authenticate_bearer(token, method="jwt-cookie")
            except InvalidToken:  # a cookie client gets no Bearer challenge
                raise NotAuthenticated from None
        secret = self.transport.read_scope(scope)
        if secret is None:
            raise NotAuthenticated
        return await self.service.authenticate(secret)

    async def devices(self, principal: Principal) -> list[SessionOut]:
        """The principal's devices, sessions and token families, oldest first."""
        handle = principal.handle
        service = self.service
        listed = [
            SessionOut.of(s, current=s.handle == handle)
            for s in await service.sessions.list(principal.user_id)
        ]
        listed += [
            SessionOut.of_family(f, current=f.id == handle)
            for f in await service.tokens.refresh.list(principal.user_id)
        ]
        listed.sort(key=lambda d: (d.created_at, d.id))
        return listed

    def carries_cookie(self, connection: HTTPConnection) -> bool:
        """Whether the request carries one of velvetrope's credential cookies."""
        cookies = (self.transport, self.access_cookie, self.refresh_cookie, self.csrf.cookie)
        return any(c.read(connection) is not None for c in cookies)

    async def browser_login(self, request: Request, email: str, password: str) -> BrowserSignIn:
        """Sign a browser in: a session cookie, or access and refresh cookies in JWT mode.

        Any session the browser already had is destroyed (SESS-06), and the CSRF token
        returned is bound to the new credential (CSRF-04).

        Raises:
            TooManyAttempts, InvalidCredentials, AccountDisabled: See ``AuthService.login``.
        """
        ip = request.client.host if request.client else ""
        user_agent = request.headers.get("user-agent", "")
        if not self.jwt_cookies:
            sign_in = await self.service.login(
                email,
                password,
                ip=ip,
                user_agent=user_agent,
                replacing=self.transport.read(request),
            )
            return self.signed_in(sign_in)
        pair = await self.service.token_login(email, password, ip=ip, user_agent=user_agent)
        old = self.refresh_cookie.read(request)
        if old is not None:
            await self.service.tokens.revoke_token(old)
        return await self._signed_in_pair(pair)

    def signed_in(self, sign_in: SignIn) -> BrowserSignIn:
        """The cookie and CSRF token for a session sign-in (login, re-auth, new password)."""
        record = sign_in.session.record
        principal = Principal(
            user_id=record.user_id, method="session", handle=record.handle, session=record
        )
        cookie = (
            self.transport,
            sign_in.session.secret,
            record.expires_at - record.authenticated_at,
        )
        return BrowserSignIn(sign_in.user, principal, self.csrf.token_for(principal), (cookie,))

    async def _signed_in_pair(self, pair: TokenPair) -> BrowserSignIn:
        principal = Principal(
            user_id=pair.family.user_id, method="jwt-cookie", handle=pair.family.id
        )
        user = await self.service.user_of(principal)
        return BrowserSignIn(
            user, principal, self.csrf.token_for(principal), self.pair_cookies(pair)
        )

    def pair_cookies(self, pair: TokenPair) -> tuple[_Cookie, ...]:
        """The access and refresh cookies that carry ``pair`` (JWT-in-cookie mode)."""
        family = pair.family
        refresh_left = family.expires_at - self.service.now()
        return (
            (self.access_cookie, pair.access_token, timedelta(seconds=pair.expires_in)),
            (self.refresh_cookie, pair.refresh_token, refresh_left),
        )

    async def refresh_browser(self, connection: HTTPConnection) -> tuple[Principal, TokenPair]:
        """JWT-in-cookie mode: a new token pair from the refresh cookie.

        Raises:
            NotAuthenticated: No refresh cookie, or it is no longer valid.
        """
        token = self.refresh_cookie.read(connection)
        if token is None:
            raise NotAuthenticated
        try:
            pair = await self.service.tokens.refresh_grant(token)
        except OAuthError:
            raise NotAuthenticated from None
        principal = Principal(
            user_id=pair.family.user_id, method="jwt-cookie", handle=pair.family.id
        )
        return principal, pair

    async def live_refresh_family(self, connection: HTTPConnection) -> str | None:
        """JWT-in-cookie mode: the id of the refresh cookie's family, if it is still live."""
        token = self.refresh_cookie.read(connection) if self.jwt_cookies else None
        if token is None:
            return None
        family = await self.service.tokens.refresh.find_family(token)
        if family is None or family.revoked_at is not None:
            return None
        return family.id

    async def page_principal(self, request: Request) -> PageAuth:
        """Who a page request is from; never raises for a missing or dead credential.

        In JWT-in-cookie mode an expired access token is renewed from the refresh cookie
        (rotating it), and the new cookies ride on the page's response: navigation
        needs no script. The refresh cookie is ``SameSite=Strict``, so a page load that
        another *site* starts never renews anything; a same-site page on another origin
        (another port, a sibling subdomain) can, which is why unsafe handlers must run
        their CSRF check before calling this.

        Raises:
            StoreUnavailable: The store did not answer (pages fail closed too).
        """
        try:
            return PageAuth(await self.authenticate_scope(request.scope))
        except (NotAuthenticated, InvalidToken):
            pass
        if not self.jwt_cookies or self.refresh_cookie.read(request) is None:
            return PageAuth(None)
        try:
            _, pair = await self.refresh_browser(request)
        except NotAuthenticated:
            return PageAuth(None)
        principal = await self.service.authenticate_bearer(pair.access_token, method="jwt-cookie")
        return PageAuth(principal, self.pair_cookies(pair))

    def sign_out(self, response: Response) -> Response:
        """Expire every credential cookie and ask the browser to clear site data (COOK-08)."""
        credentials = (self.access_cookie, self.refresh_cookie) if self.jwt_cookies else ()
        for transport in credentials or (self.transport,):
            transport.clear(response)
        response.headers["Clear-Site-Data"] = CLEAR_SITE_DATA
        return response

    async def browser_logout(self, request: Request) -> None:
        """End the browser's current sign-in, whatever still proves it (CSRF-checked).

        A dead or missing credential is not an error: there is nothing to end.

        Raises:
            CsrfFailed: A live credential, but the request is cross-site or lacks the token.
        """
        try:
            principal = await self.principal(request)
        except (NotAuthenticated, InvalidToken):
            principal = None
        if principal is not None:
            await self.service.logout(principal)
        family = await self.live_refresh_family(request)
        if family is not None:
            if principal is None:  # the access token expired: the refresh family proves it
                self.csrf.check_family(request.scope, family, await form_token(request))
            await self.service.tokens.revoke_family(family)

    async def optional_principal(self, connection: HTTPConnection) -> Principal | None:
        """FastAPI dependency: the signed-in caller, or ``None`` when there is none."""
        try:
            return await self.principal(connection)
        except NotAuthenticated:
            return None

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        """ASGI lifespan: load keys and revocations; keep them fresh; close stores at the end."""
        await self.service.start()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._every, PURGE_EVERY, self._maintain)
            tasks.start_soon(
                self._every, self.settings.revocation_poll.total_seconds(), self.service.tokens.sync
            )
            notifier = self.service.stores.notifier
            if notifier is not None:  # push: other nodes' revocations arrive in milliseconds
                tasks.start_soon(notifier.listen, self._on_change)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
        await self.service.aclose()

    async def _on_change(self, topic: str) -> None:
        try:
            await self.service.tokens.on_change(topic)
        except AuthError as exc:
            _logger.warning("push %s could not be applied: %s", topic, exc.detail)

    async def _maintain(self) -> None:
        await self.service.sessions.purge_expired()
        await self.service.users.throttle.purge(self.service.now())
        await self.service.tokens.maintain()

    @staticmethod
    async def _every(seconds: float, job: Callable[[], Awaitable[object]]) -> None:
        """Run ``job`` every ``seconds``; a store outage is logged and retried, never fatal."""
        while True:
            await anyio.sleep(seconds)
            try:
                await job()
            except AuthError as exc:
                _logger.warning("background job %s failed: %s", job.__name__, exc.detail)
