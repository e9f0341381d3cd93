"""Shared fixtures: a frozen clock, the store, the service, an ASGI client.

Tests run on the memory store; those about store behaviour run on every backend
(see :mod:`tests.support.stores`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hypothesis import settings as hypothesis_settings

from tests.support.lab import LabRun, require_lab_tools, run_quick_lab, shared_quick_lab
from tests.support.services import (
    ORIGIN,
    PASSWORD,
    app_settings,
    asgi_client,
    started_service,
)
from tests.support.stores import BACKENDS, open_backend
from velvetrope import AuthService, FrozenClock, PasswordHasher, Settings, Velvetrope, create_app
from velvetrope.stores import Stores

# Property tests assert what a value does, never how long it took: hypothesis's
# per-example deadline would be a timed assertion, and fails on a loaded CI machine.
hypothesis_settings.register_profile("velvetrope", deadline=None, print_blob=True)
hypothesis_settings.load_profile("velvetrope")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture(scope="session")
def hasher() -> PasswordHasher:
    """Argon2id with the cheap test-only parameters (the default profile is tested on its own)."""
    return PasswordHasher("test-only")


@pytest.fixture
def backend() -> str:
    """The store backend of the test's ``stores`` and ``service``: memory, unless the test
    is marked ``every_backend`` (or lives in ``tests/stores``) and runs on each in turn."""
    return "memory"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run tests marked ``every_backend`` once per backend, unless they choose their
    backends themselves with ``@pytest.mark.parametrize("backend", ...)``."""
    if "backend" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("every_backend") is None:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if "backend" in (names.replace(" ", "").split(",") if isinstance(names, str) else names):
            return
    metafunc.parametrize("backend", BACKENDS)


# The longest modules, run first: pytest-xdist hands out modules in collection order, and
# one of these started last would keep the run waiting on it alone (schemathesis takes
# 70-270 s depending on the machine's load; the lab run about 80 s, shared by both lab
# modules; the soak 40 s).
LONGEST_FIRST = (
    "tests/e2e/test_contract.py",
    "tests/lab/test_quick_run.py",
    "tests/e2e/test_soak.py",
    "tests/browser/test_lab_report.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the modules of :data:`LONGEST_FIRST` first, the rest in their order."""
    rank = {path: n for n, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))


@pytest.fixture
async def stores(backend: str, tmp_path: Path) -> AsyncIterator[Stores]:
    opened = open_backend(backend, tmp_path)
    await opened.start()
    yield opened
    await opened.aclose()


@pytest.fixture
async def service(stores: Stores, clock: FrozenClock, hasher: PasswordHasher) -> AuthService:
    """The auth service on the test's store, started (see :mod:`tests.support.services`)."""
    return await started_service(stores, clock=clock, hasher=hasher)


@pytest.fixture
def settings() -> Settings:
    return app_settings()


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
    async with asgi_client(create_app(velvetrope=vr)) as http:
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


@pytest.fixture(scope="session")
def quick_lab(tmp_path_factory: pytest.TempPathFactory) -> LabRun:
    """One ``velvetrope lab --quick`` run for the whole session (about a minute), shared
    by pytest-xdist's workers through the directory their base temps have in common."""
    require_lab_tools()
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return run_quick_lab(tmp_path_factory.mktemp("lab"))
    return shared_quick_lab(tmp_path_factory.getbasetemp().parent)
