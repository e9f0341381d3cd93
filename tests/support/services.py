"""The auth service as tests build it: the test policies, a started service, an HTTP client.

Every service here runs on an injected clock and the cheap test-only password hasher;
the policies are fixed so that tests can state their deadlines (a 30-minute idle
timeout, a 12-hour lifetime, 15-minute access tokens).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
from starlette.types import ASGIApp

from velvetrope import (
    AuthService,
    Clock,
    PasswordHasher,
    SessionPolicy,
    Settings,
    ThrottlePolicy,
    TokenPolicy,
)
from velvetrope.core.gateway import Gateway, GatewayPolicy
from velvetrope.stores import Stores

__all__ = [
    "CLIENT",
    "ORIGIN",
    "PASSWORD",
    "SESSION_POLICY",
    "TOKEN_POLICY",
    "app_settings",
    "asgi_client",
    "new_service",
    "running",
    "started_service",
]

PASSWORD = "correct horse battery staple"
ORIGIN = "https://testserver"
CLIENT = ("203.0.113.7", 4711)
"""The client address of in-process requests (a documentation address, RFC 5737)."""

SESSION_POLICY = SessionPolicy(
    idle_timeout=timedelta(minutes=30),
    absolute_lifetime=timedelta(hours=12),
    touch_interval=timedelta(seconds=60),
    max_per_user=5,
    reauth_window=timedelta(minutes=10),
)

TOKEN_POLICY = TokenPolicy(issuer=ORIGIN, audience=ORIGIN)


def new_service(
    stores: Stores, *, clock: Clock, hasher: PasswordHasher, **options: Any
) -> AuthService:
    """An ``AuthService`` on ``stores`` with the test policies (not started yet).

    ``options`` are ``AuthService`` keyword arguments that replace the defaults here
    (``session_policy``, ``throttle_policy``, ``token_policy``, ...).
    """
    chosen: dict[str, Any] = {
        "session_policy": SESSION_POLICY,
        "throttle_policy": ThrottlePolicy(),
        "token_policy": TOKEN_POLICY,
        **options,
    }
    return AuthService(stores, hasher=hasher, now=clock, **chosen)


async def started_service(
    stores: Stores, *, clock: Clock, hasher: PasswordHasher, **options: Any
) -> AuthService:
    """:func:`new_service`, started (the stores connected, keys and secrets loaded)."""
    service = new_service(stores, clock=clock, hasher=hasher, **options)
    await service.start()
    return service


@contextlib.asynccontextmanager
async def running(service: AuthService) -> AsyncIterator[AuthService]:
    """Start ``service``, hand it over, and close it (and its stores) afterwards."""
    await service.start()
    try:
        yield service
    finally:
        await service.aclose()


def gateway_for(service: AuthService, policy: GatewayPolicy, clock: Clock) -> Gateway:
    """A gateway (one node's) over ``service``'s sessions, store and events (not started)."""
    return Gateway(
        sessions=service.sessions,
        strategy=service.session_strategy,
        keys=service.stores.keys,
        notifier=service.stores.notifier,
        events=service.events,
        policy=policy,
        now=clock,
    )


def app_settings(**changes: Any) -> Settings:
    """Settings for an in-process app: memory store URL, ``ORIGIN``, no ``.env`` file."""
    chosen: dict[str, Any] = {"database_url": "memory://", "public_origin": ORIGIN, **changes}
    return Settings(_env_file=None, **chosen)


@contextlib.asynccontextmanager
async def asgi_client(
    app: ASGIApp, *, client: tuple[str, int] = CLIENT
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to ``app`` in-process over https (so ``Secure`` cookies
    flow), from ``client``, sending nothing a test does not ask for."""
    transport = httpx.ASGITransport(app=app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        yield http
