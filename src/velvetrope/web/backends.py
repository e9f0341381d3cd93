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
  credential through its strategy, and a browser's sign-out clears every ambient
  transport's cookie.
* The account page says how one signed in with the backend's ``description``.

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

Add a way in with ``Velvetrope.add_backend(AuthBackend(name, transport, strategy))``;
a backend that could not serve (see :func:`check_backend`) is refused, and the installed
ones stay as they were.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from time import perf_counter

from starlette.types import Scope

from velvetrope.core.devices import Device, sorted_devices
from velvetrope.core.principal import Principal
from velvetrope.core.strategies import Strategy
from velvetrope.errors import InvalidToken, NotAuthenticated, SessionNotFound
from velvetrope.web.transports import Transport

__all__ = ["AuthBackend", "Authenticator", "check_backend"]


@dataclass(frozen=True, slots=True)
class AuthBackend:
    """One way in.

    Attributes:
        name: What :attr:`Principal.method` says for requests it let in.
        transport: How the credential travels (and whether it is ambient).
        strategy: What the credential is: how to verify and end it.
        description: How the account page says one is signed in through it ("an
            access token, in the Authorization header"); empty: the page shows ``name``.
    """

    name: str
    transport: Transport
    strategy: Strategy
    description: str = field(default="", kw_only=True)


_TRANSPORT_METHODS = ("read_scope", "write", "clear")
_STRATEGY_METHODS = ("authenticate", "destroy", "devices", "end_device")
_MISSING = object()


def check_backend(backend: AuthBackend) -> None:
    """Refuse a backend that could not serve a request, naming what is wrong.

    Raises:
        TypeError: ``backend`` is no :class:`AuthBackend`, or its transport or strategy
            lacks what the :class:`Transport` or :class:`Strategy` protocol asks for.
        ValueError: Its name is empty.
    """
    if not isinstance(backend, AuthBackend):
        raise TypeError(f"a way in is an AuthBackend, not {type(backend).__name__}")
    if not isinstance(backend.name, str) or not backend.name.strip():
        raise ValueError(f"a backend needs a non-empty name, not {backend.name!r}")
    transport, strategy = backend.transport, backend.strategy
    problems = [
        *_lacking("transport", transport, _TRANSPORT_METHODS),
        *_lacking("strategy", strategy, _STRATEGY_METHODS),
    ]
    if not isinstance(getattr(transport, "name", None), str):
        problems.append("its transport's name is missing or not a string")
    if not isinstance(getattr(transport, "ambient", None), bool):
        problems.append("its transport's ambient is missing or not True/False")
    challenge = getattr(transport, "challenge", _MISSING)
    if challenge is _MISSING:
        problems.append("its transport has no challenge (None for cookies)")
    elif not isinstance(challenge, str | None):
        problems.append("its transport's challenge is neither a string nor None")
    if problems:
        raise TypeError(f"backend {backend.name!r}: " + "; ".join(problems))


def _lacking(part: str, value: object, methods: Sequence[str]) -> list[str]:
    missing = [m for m in methods if not callable(getattr(value, m, None))]
    if not missing:
        return []
    kind = type(value).__name__
    return [f"its {part} ({kind}) lacks the method(s) {', '.join(missing)}"]


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
        # Called with the check's perf_counter() start when it ends (metrics); None: off.
        self.timer: Callable[[float], None] | None = None
        self._by_name: dict[str, AuthBackend] = {}
        self._replace(tuple(backends))

    def _replace(self, backends: tuple[AuthBackend, ...]) -> None:
        """Install ``backends``, or raise and leave the installed ones as they were."""
        for backend in backends:
            check_backend(backend)
        names = [b.name for b in backends]
        taken = [n for i, n in enumerate(names) if n in names[:i]]
        if taken:
            raise ValueError(f"a backend called {taken[0]!r} is there already; names are unique")
        challenges = [b.transport.challenge for b in backends if not b.transport.ambient]
        token_challenges = {
            b.name: f'{b.transport.challenge}, error="invalid_token"'
            for b in backends
            if b.transport.challenge
        }
        # Computed above, assigned here: a bad backend changes nothing.
        self.challenge = ", ".join(c for c in challenges if c) or None
        self._token_challenges = token_challenges
        self._by_name = {b.name: b for b in backends}
        self._backends = backends

    @property
    def backends(self) -> tuple[AuthBackend, ...]:
        """The backends, in the order they are asked."""
        return self._backends

    def add(self, backend: AuthBackend, *, before: str | None = None) -> None:
        """Add a way in: last, or just before the backend called ``before``.

        Raises:
            ValueError: A backend has that name already, or the name is empty, or
                ``before`` names none.
            TypeError: The backend's transport or strategy lacks a method or attribute
                (see :func:`check_backend`).

        Either way the installed backends are left as they were.
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
        timer = self.timer  # metrics: one attribute read when off, no extra frame
        started = 0.0 if timer is None else perf_counter()
        try:
            for backend in self._backends:
                try:
                    credential = backend.transport.read_scope(scope)
                    if credential is None:
                        continue
                    return await backend.strategy.authenticate(credential, method=backend.name)
                except NotAuthenticated as exc:
                    raise self._refusal(backend, exc) from None
            raise NotAuthenticated().challenged(self.challenge)
        finally:
            if timer is not None:
                timer(started)

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

    async def end_devices(
        self, user_id: str, strategies: Sequence[Strategy], *, keep: str | None = None
    ) -> int:
        """End every device the given strategies hold for the user, but the one with
        handle ``keep``; return how many."""
        ended = 0
        for strategy in strategies:
            for device in await strategy.devices(user_id):
                if device.handle != keep:
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
