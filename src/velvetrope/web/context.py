"""What the routes and pages work with: the parts of one velvetrope, wired together.

A :class:`WebContext` is built once per :class:`~velvetrope.web.extension.Velvetrope`.
Its routers bind it into each request's scope (:meth:`WebContext.bind`, a router
dependency), and route handlers, plain functions, receive it with
``ctx: Ctx`` (:func:`context_of`). So handlers need no closure and no import of the
facade, and one app can hold routers of two velvetropes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection
from starlette.types import Scope

from velvetrope.core.devices import Device
from velvetrope.core.gateway import Gateway
from velvetrope.core.hooks import AccountEvent
from velvetrope.core.principal import Principal
from velvetrope.core.service import AuthService, SignIn
from velvetrope.core.strategies import Strategy
from velvetrope.errors import InvalidToken, SessionInvalid
from velvetrope.settings import Settings
from velvetrope.stores.records import UserRecord
from velvetrope.web.backends import AuthBackend, Authenticator
from velvetrope.web.bodies import PasswordChange
from velvetrope.web.browser import JWT_COOKIE, SESSION, BrowserCookies, BrowserFlows
from velvetrope.web.csrf import CsrfGuard, OriginPolicy
from velvetrope.web.dependencies import Gate
from velvetrope.web.transports import BearerTransport, DPoPTransport, Transport

__all__ = [
    "BEARER",
    "DPOP",
    "Ctx",
    "WebContext",
    "build_gateway",
    "context_of",
    "default_backends",
]

BEARER = "bearer"
"""The backend name of ``Authorization: Bearer`` access tokens."""
DPOP = "dpop"
"""The backend name of DPoP-bound access tokens (``Authorization: DPoP`` + a proof)."""
_SCOPE_KEY = "velvetrope.context"

# How the account page says one signed in (a device-bound session says more; see
# templates/account.html).
_BEARER_SAYS = "an access token, in the Authorization header"
_DPOP_SAYS = "an access token bound to a key this device holds (DPoP)"
_JWT_COOKIE_SAYS = "an access token and a refresh token, in HttpOnly cookies"
_SESSION_SAYS = "a server-side session, in an HttpOnly cookie"


def default_backends(
    settings: Settings, service: AuthService, cookies: BrowserCookies
) -> list[AuthBackend]:
    """The server's ways in, in order: bearer and DPoP tokens, then the browser credential.

    All token ways in share one strategy (one list of token devices); under
    ``VELVETROPE_DPOP=require`` it refuses unbound tokens, and requests with no
    credential are told about the DPoP scheme.
    """
    tokens = service.token_strategy
    found = [AuthBackend(BEARER, BearerTransport(), tokens, description=_BEARER_SAYS)]
    policy = service.dpop.policy
    if policy.enabled:
        transport = DPoPTransport(
            settings.origin, algorithms=policy.algorithms, advertise=policy.mode == "require"
        )
        found.append(AuthBackend(DPOP, transport, tokens, description=_DPOP_SAYS))
    if settings.browser_credentials == "jwt-cookie":
        cookie = AuthBackend(JWT_COOKIE, cookies.access, tokens, description=_JWT_COOKIE_SAYS)
        return [*found, cookie]
    session = AuthBackend(
        SESSION, cookies.session, service.session_strategy, description=_SESSION_SAYS
    )
    return [*found, session]


def build_gateway(settings: Settings, service: AuthService) -> Gateway | None:
    """The hybrid gateway the settings describe, or ``None`` when it is off."""
    policy = settings.gateway_policy()
    return None if policy is None else service.gateway(policy)


class WebContext:
    """Settings, the service, the ways in, CSRF and the browser flows of one velvetrope."""

    def __init__(self, settings: Settings, service: AuthService) -> None:
        self.settings = settings
        self.service = service
        secure = settings.secure_cookies
        self.cookies = BrowserCookies.for_origin(secure=secure)
        self.csrf = CsrfGuard(
            lambda: service.csrf,
            OriginPolicy(settings.origin, settings.cors_allowlist()),
            secure=secure,
        )
        self.authenticator = Authenticator(
            default_backends(settings, service, self.cookies), on_sign_out=self._signed_out
        )
        self.gate = Gate(self.authenticator, self.csrf)
        self.browser = BrowserFlows(
            service,
            self.gate,
            self.cookies,
            jwt_cookies=settings.browser_credentials == "jwt-cookie",
        )
        self.gateway = build_gateway(settings, service)

    async def _signed_out(self, principal: Principal) -> None:
        event = AccountEvent(
            "signed_out",
            principal.user_id,
            email=principal.email,
            device=principal.handle,
            method=principal.method,
        )
        await self.service.emit(event)

    async def bind(self, connection: HTTPConnection) -> None:
        """Router dependency: make this context the request's (see :func:`context_of`)."""
        connection.scope[_SCOPE_KEY] = self

    def _cookies(self) -> list[Transport]:
        ambient = [b.transport for b in self.authenticator.backends if b.transport.ambient]
        cookies = self.cookies
        return [
            *ambient,
            cookies.session,
            cookies.bound,
            cookies.access,
            cookies.refresh,
            self.csrf.cookie,
        ]

    def cookie_names(self) -> list[str]:
        """Every cookie velvetrope reads: credentials, the refresh cookie, the CSRF cookie."""
        return list(dict.fromkeys(t.name for t in self._cookies()))

    def token_request(self, scope: Scope) -> bool:
        """Whether the request carries a well-formed credential of a non-ambient way in
        (``Authorization: Bearer <token>``): one no browser page can attach cross-site."""
        try:
            return self.authenticator.presents_non_ambient(scope)
        except InvalidToken:
            return False

    def carries_cookie(self, scope: Scope) -> bool:
        """Whether the request carries one of the cookies of :meth:`cookie_names`."""
        return any(t.read_scope(scope) is not None for t in self._cookies())

    async def devices(self, principal: Principal) -> list[Device]:
        """The principal's devices, every way in included, oldest first."""
        return await self.authenticator.devices(principal)

    async def end_device(self, principal: Principal, handle: str) -> bool:
        """End one of the principal's devices; return whether it was this one.

        Ending another device needs a recent sign-in (SESS-12); ending your own is a
        sign-out and needs none.

        Raises:
            ReauthRequired: Another device, and no recent sign-in.
            SessionNotFound: No such device of this user.
        """
        current = handle == principal.handle
        if not current:
            await self.service.require_recent_auth(principal)
        await self.authenticator.end_device(principal.user_id, handle)
        event = AccountEvent("signed_out", principal.user_id, email=principal.email, device=handle)
        await self.service.emit(event)
        return current

    async def sign_out_everywhere(self, principal: Principal) -> int:
        """End every device of the user, this one included (needs a recent sign-in).

        Raises:
            ReauthRequired: No recent sign-in.
        """
        await self.service.require_recent_auth(principal)
        ended = await self.service.sign_out_everywhere(principal.user_id)
        return ended + await self.end_devices_of_own_ways_in(principal.user_id)

    async def end_devices_of_own_ways_in(self, user_id: str, *, keep: str | None = None) -> int:
        """End the user's devices held by the application's own ways in (the backends it
        added; velvetrope's sessions and token families are the service's to end), all but
        the device with handle ``keep``; return how many ended."""
        own = [s for s in self.authenticator.strategies() if not self._builtin(s)]
        return await self.authenticator.end_devices(user_id, own, keep=keep)

    def _builtin(self, strategy: Strategy | None) -> bool:
        service = self.service
        return strategy is service.session_strategy or strategy is service.token_strategy

    async def reset_password(self, token: str, new_password: str, *, ip: str = "") -> UserRecord:
        """:meth:`AuthService.reset_password`, which ends every session and token family,
        and the devices of the application's own ways in too (RESET-07).

        Raises:
            InvalidLink: The link is not (or no longer) valid.
            WeakPassword: The new password fails the policy (the link stays usable).
        """
        user = await self.service.reset_password(token, new_password, ip=ip)
        await self.end_devices_of_own_ways_in(user.id)
        return user

    async def change_password(
        self, principal: Principal, session_id: str | None, body: PasswordChange, *, ip: str
    ) -> SignIn | None:
        """:meth:`AuthService.change_password` with the submitted form, and every other
        device of the application's own ways in ends too (the caller's own, if it came in
        through one, stays).

        Raises:
            InvalidCredentials: The current password is wrong.
            WeakPassword: The new one fails the policy.
            SessionInvalid: The password changed, but the caller's session ended
                meanwhile; every device, of every way in, ended with it.
        """
        try:
            sign_in = await self.service.change_password(
                principal, session_id, body.current_password, body.new_password, ip=ip
            )
        except SessionInvalid:  # changed, then the session was gone: everything ended
            await self.end_devices_of_own_ways_in(principal.user_id)
            raise
        backend = self.authenticator.backend_of(principal)
        own = backend is not None and not self._builtin(backend.strategy)
        await self.end_devices_of_own_ways_in(
            principal.user_id, keep=principal.handle if own else None
        )
        return sign_in


def context_of(connection: HTTPConnection) -> WebContext:
    """The velvetrope whose router matched this request.

    Raises:
        RuntimeError: The route was not added through a velvetrope router.
    """
    context = connection.scope.get(_SCOPE_KEY)
    if not isinstance(context, WebContext):
        raise RuntimeError("this route needs a velvetrope router (its bind dependency)")
    return context


Ctx = Annotated[WebContext, Depends(context_of)]
"""A route parameter that receives the request's :class:`WebContext`."""
