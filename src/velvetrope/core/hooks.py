"""Hooks: your code, run when something happens to an account, and the claims hook.

::

    hooks = auth.hooks  # velvetrope.Velvetrope, or AuthService(..., hooks=Hooks())

    @hooks.claims
    async def claims(user: UserRecord) -> dict[str, object]:
        return {"roles": await roles_of(user.id)}

    @hooks.on_register
    async def welcome(event: AccountEvent) -> None:
        await mailer.queue_welcome(event.email)

Event hooks run on register, sign-in (pages, API and the password grant), sign-out
(one device or everywhere), password change and refresh-token reuse (a sign of theft:
the family was revoked). They run **after** the operation succeeded, awaited in the
request, in the order they were added. A hook that raises is **only logged** (on the
``velvetrope.hooks`` logger, with its traceback): the operation it reports already
happened, so the caller still gets its answer. Keep hooks quick; hand slow work (mail,
webhooks) to a queue or a task.

The claims hook (one per service) is different: it runs **before** a credential is
issued, and if it raises or its claims break a rule (see :mod:`velvetrope.core.claims`)
**the sign-in fails cleanly** with ``InvalidClaims`` (500 ``invalid_claims``), and
nothing is issued.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from velvetrope.core.claims import DEFAULT_MAX_CLAIMS_BYTES, ClaimsHook, compute_claims
from velvetrope.stores.records import UserRecord

__all__ = ["AccountEvent", "EventHook", "HookEvent", "Hooks"]

_logger = logging.getLogger("velvetrope.hooks")

HookEvent = Literal["registered", "signed_in", "signed_out", "password_changed", "refresh_reused"]


@dataclass(frozen=True, slots=True)
class AccountEvent:
    """What happened, to whom, on which device.

    Attributes:
        kind: ``registered``, ``signed_in``, ``signed_out``, ``password_changed`` or
            ``refresh_reused``.
        user_id: The account.
        email: Its address (empty where the operation did not read the account:
            sign-out and refresh reuse).
        device: The session handle or token family id; empty for ``registered`` and
            ``password_changed``, and for a sign-out everywhere (``all_devices``).
        method: How: ``session`` or ``token`` for a sign-in; the way in's name for a
            sign-out; empty otherwise.
        ip: The client address, where known.
        all_devices: A sign-out of every device of the user.
    """

    kind: HookEvent
    user_id: str
    email: str = ""
    device: str = ""
    method: str = ""
    ip: str = ""
    all_devices: bool = False


EventHook = Callable[[AccountEvent], Awaitable[Any]]
"""``async def hook(event: AccountEvent) -> None``."""


class Hooks:
    """The application's hooks of one service (see the module docstring)."""

    def __init__(self, *, max_claims_bytes: int = DEFAULT_MAX_CLAIMS_BYTES) -> None:
        """Args:
        max_claims_bytes: The cap on application claims as compact JSON.
        """
        self.max_claims_bytes = max_claims_bytes
        self._claims: ClaimsHook | None = None
        self._hooks: dict[HookEvent, list[EventHook]] = {}

    def claims(self, hook: ClaimsHook) -> ClaimsHook:
        """Decorator: compute application claims with ``hook`` (replaces any earlier one)."""
        self._claims = hook
        return hook

    def on(self, kind: HookEvent, hook: EventHook) -> EventHook:
        """Run ``hook`` after every ``kind`` event (the decorators below call this).

        Raises:
            ValueError: ``kind`` is not an event.
        """
        if kind not in HookEvent.__args__:  # type: ignore[attr-defined]
            raise ValueError(f"no hook event called {kind!r}")
        self._hooks.setdefault(kind, []).append(hook)
        return hook

    def on_register(self, hook: EventHook) -> EventHook:
        """Decorator: run ``hook`` after an account is created."""
        return self.on("registered", hook)

    def on_sign_in(self, hook: EventHook) -> EventHook:
        """Decorator: run ``hook`` after a password sign-in (session or tokens)."""
        return self.on("signed_in", hook)

    def on_sign_out(self, hook: EventHook) -> EventHook:
        """Decorator: run ``hook`` after a sign-out (one device, or everywhere)."""
        return self.on("signed_out", hook)

    def on_password_change(self, hook: EventHook) -> EventHook:
        """Decorator: run ``hook`` after a password change."""
        return self.on("password_changed", hook)

    def on_refresh_reuse(self, hook: EventHook) -> EventHook:
        """Decorator: run ``hook`` when a rotated refresh token comes back (the family
        was revoked: an alert-worthy event)."""
        return self.on("refresh_reused", hook)

    async def claims_for(self, user: UserRecord) -> dict[str, Any]:
        """The application claims of ``user``, checked (``{}`` without a claims hook).

        Raises:
            InvalidClaims: The hook failed, or its claims break a rule.
        """
        return await compute_claims(self._claims, user, max_bytes=self.max_claims_bytes)

    async def emit(self, event: AccountEvent) -> None:
        """Run the hooks of ``event.kind``; a hook that raises is logged, never raised."""
        for hook in self._hooks.get(event.kind, ()):
            try:
                await hook(event)
            except Exception:  # the app's code; the operation already happened
                _logger.exception("a %s hook failed for user %s", event.kind, event.user_id)
