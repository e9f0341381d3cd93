"""Shared fixtures: a frozen clock, every store backend, the service, an ASGI client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.stores.postgres_backend import open_postgres
from tests.stores.redis_backend import open_redis
from velvetrope import (
    AuthService,
    FrozenClock,
    PasswordHasher,
    SessionPolicy,
    Settings,
    ThrottlePolicy,
    Velvetrope,
    create_app,
)
from velvetrope.core.tokens.access import TokenPolicy
from velvetrope.stores import MemoryStores, SQLiteStores, Stores

PASSWORD = "correct horse battery staple"
ORIGIN = "https://testserver"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture(scope="session")
def hasher() -> PasswordHasher:
    """Argon2id with the cheap test-only parameters (the default profile is tested on its own)."""
    return PasswordHasher("test-only")


BACKENDS = ["memory", "sqlite", "redis", "postgres"]


def open_backend(name: str, tmp_path: Path) -> Stores:
    """Open a fresh, empty backend of kind ``name`` (call ``await stores.start()`` next)."""
    if name == "memory":
        return MemoryStores()
    if name == "sqlite":
        return SQLiteStores(tmp_path / "velvetrope.db")
    if name == "redis":
        return open_redis(tmp_path)
    if name == "postgres":
        return open_postgres(tmp_path)  # skips (fails under CI) without a server
    raise ValueError(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of each store backend in turn; tests using it run once per backend."""
    return str(request.param)


@pytest.fixture
async def stores(backend: str, tmp_path: Path) -> AsyncIterator[Stores]:
    opened = open_backend(backend, tmp_path)
    await opened.start()
    yield opened
    await opened.aclose()


SESSION_POLICY = SessionPolicy(
    idle_timeout=timedelta(minutes=30),
    absolute_lifetime=timedelta(hours=12),
    touch_interval=timedelta(seconds=60),
    max_per_user=5,
    reauth_window=timedelta(minutes=10),
)


TOKEN_POLICY = TokenPolicy(issuer=ORIGIN, audience=ORIGIN)


@pytest.fixture
async def service(stores: Stores, clock: FrozenClock, hasher: PasswordHasher) -> AuthService:
    started = AuthService(
        stores,
        hasher=hasher,
        session_policy=SESSION_POLICY,
        throttle_policy=ThrottlePolicy(),
        token_policy=TOKEN_POLICY,
        now=clock,
    )
    await started.start()
    return started


@pytest.fixture
def settings() -> Settings:
    return Settings(database_url="memory://", public_origin=ORIGIN, _env_file=None)


@pytest.fixture
def vr(settings: Settings, service: AuthService) -> Velvetrope:
    return Velvetrope(settings, service=service)


CSRF_SOURCES = frozenset({"/auth/login", "/auth/reauth", "/auth/csrf", "/auth/refresh"})


def remember_csrf(http: httpx.AsyncClient) -> None:
    """Make ``http`` behave like a well-written browser app: it keeps the ``csrf_token``
    of the latest sign-in and sends it as ``X-CSRF-Token`` (the documented contract)."""

    async def hook(response: httpx.Response) -> None:
        if response.request.url.path in CSRF_SOURCES and response.status_code == 200:
            await response.aread()
            token = response.json().get("csrf_token")
            if token:
                http.headers["X-CSRF-Token"] = token

    http.event_hooks["response"].append(hook)


@pytest.fixture
async def bare_client(vr: Velvetrope) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process (https, so Secure cookies flow),
    sending nothing a test does not ask for: the CSRF tests' client."""
    app = create_app(velvetrope=vr)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4711))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        yield http


@pytest.fixture
async def client(bare_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """:func:`bare_client` behaving like a same-origin browser app: ``Origin`` on every
    request, and the latest ``csrf_token`` in ``X-CSRF-Token``."""
    bare_client.headers["Origin"] = ORIGIN
    remember_csrf(bare_client)
    return bare_client


@pytest.fixture
async def user_email(service: AuthService) -> str:
    """A registered user's email (password: ``PASSWORD``)."""
    user = await service.register("ann@example.com", PASSWORD)
    return user.email


@pytest.fixture
async def signed_in(client: httpx.AsyncClient, user_email: str) -> httpx.AsyncClient:
    """``client`` after signing in as ``user_email``."""
    response = await client.post("/auth/login", json={"email": user_email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return client


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear every VELVETROPE_* variable for the test."""
    for key in list(os.environ):
        if key.startswith("VELVETROPE_"):
            monkeypatch.delenv(key)
