"""Ways in: an ordered list of backends, each a name, a transport and a strategy.

Every request is checked by one :class:`Authenticator`, the seam shared by the
FastAPI dependency, :class:`~velvetrope.web.guard.AuthMiddleware`, the routes and the
pages. It asks each backend's transport in turn for a credential; the first that finds
one decides, and its strategy verifies it (a credential that is present is *the*
credential: a bad bearer token is refused even if a good cookie rides along).

What follows from the backend, never from its name:

* CSRF applies to unsafe requests whose backend's transport is ``ambient``.
* A refusal carries the backend's ``WWW-Authenticate`` challenge (or the one its
  transport or strategy chose: a DPoP refusal names the ``DPoP`` scheme and its error,
  RFC 9449 section 7.1); with no credential at all, the challenges of every
  non-ambient backend.
* Devices are listed and ended by the backends' strategies; sign-out destroys the
  credential through its strategy.

A transport hands its strategy a :class:`~velvetrope.core.credentials.Presented`:
the credential and, for bound ones, the proof that binds it to the request (a DPoP
proof with the method and URL it must name; a device-bound session's bound cookie).

The server's default list, built from settings by :func:`default_backends`::

    bearer        Authorization: Bearer <access token>      AccessTokenStrategy
    dpop          Authorization: DPoP <token> + DPoP proof  AccessTokenStrategy (unless
                                                            VELVETROPE_DPOP=off)
    session       the session cookie (+ the bound cookie)   DeviceBoundSessionStrategy
      or, with VELVETROPE_BROWSER_CREDENTIALS=jwt-cookie:
    jwt-cookie    the access-token cookie                   AccessTokenStrategy

Add a way in with ``Velvetrope.add_backend(AuthBackend(name, transport, strategy))``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from starlette.types import Scope

from velvetrope.core.devices import Device, sorted_devices
from velvetrope.core.principal import Principal
from velvetrope.core.strategies import Strategy
from velvetrope.errors import InvalidToken, NotAuthenticated, SessionNotFound
from velvetrope.web.transports import Transport

__all__ = ["AuthBackend", "Authenticator"]


@dataclass(frozen=True, slots=True)
class AuthBackend:
    """One way in.

    Attributes:
        name: What :attr:`Principal.method` says for requests it let in.
        transport: How the credential travels (and whether it is ambient).
        strategy: What the credential is: how to verify and end it.
    """

    name: str
    transport: Transport
    strategy: Strategy


class Authenticator:
    """Runs the ordered backends: the per-request credential check (CSRF is separate)."""

    def __init__(
        self,
        backends: Iterable[AuthBackend],
        *,
        on_sign_out: Callable[[Principal], Awaitable[None]] | None = None,
    ) -> None:
        """Args:
        backends: The ways in, in the order they are asked.
        on_sign_out: Called after :meth:`sign_out` ended a credential (the hooks).
        """
        self.on_sign_out = on_sign_out
        self._backends: tuple[AuthBackend, ...] = ()
        self._by_name: dict[str, AuthBackend] = {}
        self._replace(tuple(backends))

    def _replace(self, backends: tuple[AuthBackend, ...]) -> None:
        names = [b.name for b in backends]
        if len(set(names)) != len(names):
            raise ValueError(f"backend names must be unique: {names}")
        self._backends = backends
        self._by_name = {b.name: b for b in backends}
        challenges = [b.transport.challenge for b in backends if not b.transport.ambient]
        self.challenge = ", ".join(c for c in challenges if c) or None
        self._token_challenges = {
            b.name: f'{b.transport.challenge}, error="invalid_token"'
            for b in backends
            if b.transport.challenge
        }

    @property
    def backends(self) -> tuple[AuthBackend, ...]:
        """The backends, in the order they are asked."""
        return self._backends

    def add(self, backend: AuthBackend, *, before: str | None = None) -> None:
        """Add a way in: last, or just before the backend called ``before``.

        Raises:
            ValueError: A backend has that name already, or ``before`` names none.
        """
        backends = list(self._backends)
        if before is None:
            backends.append(backend)
        else:
            if before not in self._by_name:
                raise ValueError(f"no backend called {before!r}")
            backends.insert(backends.index(self._by_name[before]), backend)
        self._replace(tuple(backends))

    async def authenticate(self, scope: Scope) -> Principal:
        """The principal behind the request: the first backend with a credential decides.

        Raises:
            NotAuthenticated: No credential, or the one present is not valid
                (:class:`InvalidToken` for non-ambient transports), with its challenge.
            StoreUnavailable: The check could not be made (fail closed).
        """
        for backend in self._backends:
            try:
                credential = backend.transport.read_scope(scope)
                if credential is None:
                    continue
                return await backend.strategy.authenticate(credential, method=backend.name)
            except NotAuthenticated as exc:
                raise self._refusal(backend, exc) from None
        raise NotAuthenticated().challenged(self.challenge)

    def _refusal(self, backend: AuthBackend, exc: NotAuthenticated) -> NotAuthenticated:
        if backend.transport.ambient:
            if isinstance(exc, InvalidToken):  # a cookie client gets no invalid_token answer
                return NotAuthenticated().challenged(self.challenge)
            return exc.challenged(self.challenge)
        if exc.challenge is not None:  # the way in chose its own answer (DPoP)
            return exc
        if isinstance(exc, InvalidToken):
            return exc.challenged(self._token_challenges.get(backend.name))
        return exc.challenged(backend.transport.challenge)

    def backend_of(self, principal: Principal) -> AuthBackend | None:
        """The backend that let ``principal`` in (``None`` for one made elsewhere)."""
        return self._by_name.get(principal.method)

    def is_ambient(self, principal: Principal) -> bool:
        """Whether ``principal``'s credential is one the browser sends on its own (CSRF
        applies). A principal no backend made is treated as ambient: checked, not trusted."""
        backend = self._by_name.get(principal.method)
        return backend is None or backend.transport.ambient

    def presents_non_ambient(self, scope: Scope) -> bool:
        """Whether the request carries a credential no browser sends on its own (so the
        CSRF checks do not apply to it).

        Raises:
            InvalidToken: Such a credential is there, malformed (with its challenge).
        """
        for backend in self._backends:
            if backend.transport.ambient:
                continue
            try:
                if backend.transport.read_scope(scope) is not None:
                    return True
            except InvalidToken as exc:
                if exc.challenge is None:
                    exc.challenged(self._token_challenges.get(backend.name))
                raise
        return False

    def cookie_names(self) -> list[str]:
        """The names of the cookies that carry credentials (the ambient transports')."""
        return [b.transport.name for b in self._backends if b.transport.ambient]

    def strategies(self) -> list[Strategy]:
        """Each distinct strategy once, in backend order (two backends may share one)."""
        seen: list[Strategy] = []
        for backend in self._backends:
            if not any(backend.strategy is s for s in seen):
                seen.append(backend.strategy)
        return seen

    async def devices(self, principal: Principal) -> list[Device]:
        """The principal's devices across every strategy, oldest first, its own marked."""
        found: list[Device] = []
        for strategy in self.strategies():
            found.extend(await strategy.devices(principal.user_id))
        return sorted_devices(found, current=principal.handle)

    async def end_device(self, user_id: str, handle: str) -> None:
        """End the user's device with ``handle``, whichever strategy holds it.

        Raises:
            SessionNotFound: No strategy has a live device of the user with that handle.
        """
        for strategy in self.strategies():
            if await strategy.end_device(user_id, handle):
                return
        raise SessionNotFound

    async def end_devices(self, user_id: str, strategies: Sequence[Strategy]) -> int:
        """End every device the given strategies hold for the user; return how many."""
        ended = 0
        for strategy in strategies:
            for device in await strategy.devices(user_id):
                ended += await strategy.end_device(user_id, device.handle)
        return ended

    async def sign_out(self, principal: Principal) -> None:
        """End the credential behind ``principal`` through its strategy (idempotent).

        Raises:
            ValueError: No backend of this authenticator made ``principal``.
        """
        backend = self.backend_of(principal)
        if backend is None:
            raise ValueError(f"no backend called {principal.method!r}")
        await backend.strategy.destroy(principal)
        if self.on_sign_out is not None:
            await self.on_sign_out(principal)
