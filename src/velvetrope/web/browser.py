"""Browser sign-in flows: the cookies a browser holds, whichever credential is in them.

``VELVETROPE_BROWSER_CREDENTIALS`` picks what a browser sign-in sets:

* ``session`` (the default): the session ID in ``__Host-velvetrope-session``;
* ``jwt-cookie``: an access token in ``__Host-velvetrope-access`` (``SameSite=Lax``,
  lives as long as the token) and a refresh token in ``__Host-velvetrope-refresh``
  (``SameSite=Strict``), renewed through ``POST /auth/refresh`` or, for pages, on
  navigation.

The API routes and the pages share these flows: sign-in (SESS-06: a new credential
every time, the old one destroyed), re-authentication, renewal, and sign-out
(COOK-08: every credential cookie expired, an added ambient way in's too,
``Clear-Site-Data`` sent).

With session cookies and ``VELVETROPE_SESSION_BINDING`` on (``offer``, the default, or
``require``), a sign-in also offers the browser to bind the session to a device key
(DBSC: the ``Secure-Session-Registration`` header; see :mod:`velvetrope.web.routes.dbsc`);
a bound session is then carried by the short-lived ``__Host-velvetrope-bound`` cookie too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from velvetrope.core.binding.dbsc import DBSC_ALGORITHMS
from velvetrope.core.principal import Principal
from velvetrope.core.service import AuthService, SignIn
from velvetrope.core.tokens.service import TokenPair
from velvetrope.errors import InvalidToken, NotAuthenticated, OAuthError
from velvetrope.stores.records import UserRecord
from velvetrope.web.client import client_of
from velvetrope.web.csrf import CsrfGuard, form_token
from velvetrope.web.dependencies import Gate
from velvetrope.web.transports import (
    CLEAR_SITE_DATA,
    BoundCookieTransport,
    CookieTransport,
    Transport,
)

__all__ = ["JWT_COOKIE", "SESSION", "BrowserCookies", "BrowserFlows", "BrowserSignIn", "PageAuth"]

REGISTRATION_HEADER = "Secure-Session-Registration"
REGISTER_PATH = "/auth/dbsc/register"

SESSION = "session"
"""The backend name of the session cookie (the default browser credential)."""
JWT_COOKIE = "jwt-cookie"
"""The backend name of the access-token cookie (``VELVETROPE_BROWSER_CREDENTIALS=jwt-cookie``)."""

SetCookie = tuple[CookieTransport, str, timedelta | None]


def set_cookies(response: Response, cookies: Iterable[SetCookie]) -> Response:
    """Set each ``(transport, value, max_age)`` cookie on ``response`` and return it
    (``max_age=None``: a browser-session cookie)."""
    for transport, value, max_age in cookies:
        transport.write(response, value, max_age=max_age)
    return response


@dataclass(frozen=True, slots=True)
class BrowserSignIn:
    """A browser sign-in: who, the CSRF token for the new credential, and its cookies."""

    user: UserRecord
    principal: Principal
    csrf_token: str
    cookies: tuple[SetCookie, ...]
    headers: tuple[tuple[str, str], ...] = ()

    def apply(self, response: Response) -> Response:
        """Set the credential cookies (and the device-binding offer) on ``response``."""
        for name, value in self.headers:
            response.headers.append(name, value)
        return set_cookies(response, self.cookies)


@dataclass(frozen=True, slots=True)
class PageAuth:
    """Who a page request is from (``None``: nobody) and any renewed cookies to set."""

    principal: Principal | None
    cookies: tuple[SetCookie, ...] = field(default=())

    def apply(self, response: Response) -> Response:
        """Set renewed cookies (JWT-in-cookie mode) on ``response`` and return it."""
        return set_cookies(response, self.cookies)


@dataclass(frozen=True, slots=True)
class BrowserCookies:
    """The cookies of browser sign-ins (all ``__Host-``, ``Secure``, ``HttpOnly`` on https
    and loopback origins; see :class:`CookieTransport`)."""

    session: BoundCookieTransport
    bound: CookieTransport
    access: CookieTransport
    refresh: CookieTransport

    @classmethod
    def for_origin(cls, *, secure: bool) -> BrowserCookies:
        """The cookies, with ``Secure`` and the ``__Host-`` prefix when ``secure``."""
        bound = CookieTransport(secure=secure, base_name="velvetrope-bound")
        return cls(
            session=BoundCookieTransport(secure=secure, bound=bound),
            bound=bound,
            access=CookieTransport(secure=secure, base_name="velvetrope-access"),
            # RT-08: __Host- forces Path=/, so the refresh cookie reaches every path of
            # this origin; SameSite=Strict keeps it off every cross-site request, and
            # only /auth/refresh, /auth/logout and page loads read it.
            refresh=CookieTransport(
                secure=secure, base_name="velvetrope-refresh", samesite="strict"
            ),
        )


class BrowserFlows:
    """Sign-in, re-authentication, renewal and sign-out for browsers."""

    def __init__(
        self,
        service: AuthService,
        gate: Gate,
        cookies: BrowserCookies,
        *,
        jwt_cookies: bool,
    ) -> None:
        """Args:
        service: The auth service.
        gate: The request check (authentication plus CSRF).
        cookies: The browser credential cookies.
        jwt_cookies: Whether sign-ins set access and refresh cookies instead of a
            session cookie.
        """
        self.service = service
        self.gate = gate
        self.cookies = cookies
        self.jwt_cookies = jwt_cookies
        self.binds = not jwt_cookies and service.binding.policy.mode != "off"
        """Whether browser sign-ins offer device binding (DBSC)."""
        # The bound cookie is not among them: alone it proves nothing, and sign-out's
        # Clear-Site-Data ("cookies") removes it with every other cookie of the origin.
        self.credential_cookies: tuple[CookieTransport, ...] = (
            (cookies.access, cookies.refresh) if jwt_cookies else (cookies.session,)
        )

    @property
    def csrf(self) -> CsrfGuard:
        """The CSRF guard."""
        return self.gate.csrf

    def carries_credential(self, connection: HTTPConnection) -> bool:
        """Whether the request carries a browser credential cookie, an added ambient way
        in's too (not the sign-in form's CSRF cookie, which is no sign-in to expire)."""
        if any(c.read(connection) is not None for c in self.credential_cookies):
            return True
        for backend in self.gate.authenticator.backends:
            if backend.transport.ambient:
                try:
                    if backend.transport.read_scope(connection.scope) is not None:
                        return True
                except InvalidToken:  # a malformed cookie is one to expire too
                    return True
        return False

    async def login(
        self, request: Request, email: str, password: str, *, remember: bool = True
    ) -> BrowserSignIn:
        """Sign a browser in: a session cookie, or access and refresh cookies in JWT mode.

        Any session the browser already had is destroyed (SESS-06), and the CSRF token
        returned is bound to the new credential (CSRF-04). ``remember=False`` ("remember
        me" unchecked) sets browser-session cookies (no ``Max-Age``) and gives the
        session or refresh family the shorter ``VELVETROPE_SESSION_TRANSIENT_LIFETIME``.

        Raises:
            TooManyAttempts, InvalidCredentials, AccountDisabled: See ``AuthService.login``.
        """
        client = client_of(request)
        if not self.jwt_cookies:
            sign_in = await self.service.login(
                email,
                password,
                ip=client.ip,
                user_agent=client.user_agent,
                replacing=self.cookies.session.read(request),
                persistent=remember,
            )
            return await self._offer_binding(request, self.signed_in(sign_in))
        pair = await self.service.token_login(
            email, password, ip=client.ip, user_agent=client.user_agent, persistent=remember
        )
        old = self.cookies.refresh.read(request)
        if old is not None:
            await self.service.revoke_token(old)
        principal = Principal(user_id=pair.family.user_id, method=JWT_COOKIE, handle=pair.family.id)
        user = await self.service.user_of(principal)
        token = self.csrf.token_for(principal)
        return BrowserSignIn(user, principal, token, self.pair_cookies(pair))

    async def _offer_binding(self, request: Request, sign_in: BrowserSignIn) -> BrowserSignIn:
        """Offer to bind the new session to a device key (DBSC), if binding is on."""
        session = sign_in.principal.session
        if not self.binds or session is None:
            return sign_in
        challenge = await self.service.binding.offer(session)
        path = str(request.scope.get("root_path", "")).rstrip("/") + REGISTER_PATH
        offer = f'({" ".join(DBSC_ALGORITHMS)});path="{path}";challenge="{challenge}"'
        return dataclasses.replace(sign_in, headers=((REGISTRATION_HEADER, offer),))

    def signed_in(self, sign_in: SignIn) -> BrowserSignIn:
        """The cookie and CSRF token for a session sign-in (login, re-auth, new password)."""
        record = sign_in.session.record
        principal = Principal(
            user_id=record.user_id, method=SESSION, handle=record.handle, session=record
        )
        remembered = self.service.remembered(record)
        cookie = (
            self.cookies.session,
            sign_in.session.secret,
            record.expires_at - record.authenticated_at if remembered else None,
        )
        return BrowserSignIn(sign_in.user, principal, self.csrf.token_for(principal), (cookie,))

    async def reauthenticate(
        self, request: Request, principal: Principal, password: str
    ) -> BrowserSignIn:
        """Prove the password again: the session gets a new ID and fresh deadlines; in
        JWT-cookie mode a new sign-in opens a new family (a fresh proof).

        Raises:
            NotAuthenticated: The session cookie is gone.
            TooManyAttempts, InvalidCredentials, AccountDisabled: Wrong password etc.
        """
        if principal.session is None:
            user = await self.service.user_of(principal)
            family = await self.service.family(principal.handle)
            remember = family is None or self.service.remembered_family(family)
            return await self.login(request, user.email, password, remember=remember)
        secret = self.cookies.session.read(request)
        if secret is None:
            raise NotAuthenticated
        ip = client_of(request).ip
        return self.signed_in(await self.service.reauthenticate(principal, secret, password, ip=ip))

    def pair_cookies(self, pair: TokenPair) -> tuple[SetCookie, ...]:
        """The access and refresh cookies that carry ``pair`` (JWT-in-cookie mode)."""
        family = pair.family
        if not self.service.remembered_family(family):
            # not remembered: both cookies end with the browser (the family ends sooner)
            return (
                (self.cookies.access, pair.access_token, None),
                (self.cookies.refresh, pair.refresh_token, None),
            )
        refresh_left = family.expires_at - self.service.now()
        return (
            (self.cookies.access, pair.access_token, timedelta(seconds=pair.expires_in)),
            (self.cookies.refresh, pair.refresh_token, refresh_left),
        )

    def apply_pair(self, response: Response, pair: TokenPair) -> Response:
        """Set the cookies that carry ``pair`` on ``response`` and return it."""
        return set_cookies(response, self.pair_cookies(pair))

    async def refresh(self, connection: HTTPConnection) -> tuple[Principal, TokenPair]:
        """JWT-in-cookie mode: a new token pair from the refresh cookie.

        Raises:
            NotAuthenticated: No refresh cookie, or it is no longer valid.
        """
        token = self.cookies.refresh.read(connection)
        if token is None:
            raise NotAuthenticated
        try:
            pair = await self.service.refresh_grant(token)
        except OAuthError:
            raise NotAuthenticated from None
        principal = Principal(user_id=pair.family.user_id, method=JWT_COOKIE, handle=pair.family.id)
        return principal, pair

    async def live_refresh_family(self, connection: HTTPConnection) -> str | None:
        """JWT-in-cookie mode: the id of the refresh cookie's family, if it is still live."""
        token = self.cookies.refresh.read(connection) if self.jwt_cookies else None
        if token is None:
            return None
        return await self.service.live_family(token)

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
            return PageAuth(await self.gate.authenticator.authenticate(request.scope))
        except NotAuthenticated:
            pass
        if not self.jwt_cookies or self.cookies.refresh.read(request) is None:
            return PageAuth(None)
        try:
            _, pair = await self.refresh(request)
        except NotAuthenticated:
            return PageAuth(None)
        principal = await self.service.authenticate_bearer(pair.access_token, method=JWT_COOKIE)
        return PageAuth(principal, self.pair_cookies(pair))

    def sign_out(self, response: Response) -> Response:
        """Expire every credential cookie and ask the browser to clear site data (COOK-08).

        The credential cookies are the browser sign-in's and every ambient way in's,
        one added with ``Velvetrope.add_backend`` too: ``Clear-Site-Data`` alone is not
        enough, since some clients ignore it.
        """
        ambient = [b.transport for b in self.gate.authenticator.backends if b.transport.ambient]
        cleared: list[Transport] = []
        for transport in (*self.credential_cookies, *ambient):
            if not any(transport is c for c in cleared):
                transport.clear(response)
                cleared.append(transport)
        response.headers["Clear-Site-Data"] = CLEAR_SITE_DATA
        return response

    async def logout(self, request: Request) -> None:
        """End the browser's current sign-in, whatever still proves it (CSRF-checked).

        A dead or missing credential is not an error: there is nothing to end.

        Raises:
            CsrfFailed: A live credential, but the request is cross-site or lacks the token.
        """
        try:
            principal = await self.gate.principal(request)
        except (NotAuthenticated, InvalidToken):
            principal = None
        if principal is not None:
            await self.gate.authenticator.sign_out(principal)
        family = await self.live_refresh_family(request)
        if family is not None:
            if principal is None:  # the access token expired: the refresh family proves it
                self.csrf.check_family(request.scope, family, await form_token(request))
            await self.service.revoke_family(family)
