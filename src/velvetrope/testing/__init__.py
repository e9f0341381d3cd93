"""Test helpers for apps that use velvetrope: a client, a user, a sign-in, a token.

::

    from velvetrope.testing import app_client, bearer_for, new_user, sign_in

    async def test_orders() -> None:
        async with app_client(app) as client:          # runs the app's lifespan
            assert (await client.get("/orders")).status_code == 401
            ann = await new_user(client)
            await sign_in(client, ann)                  # the session cookie, and the CSRF token
            assert (await client.post("/orders")).status_code == 201
            headers = await bearer_for(ann)             # {"Authorization": "Bearer ..."}
            assert (await client.get("/orders", headers=headers)).status_code == 200

The client talks to the app in-process over ``https://testserver`` (:data:`ORIGIN`), so
the ``Secure`` ``__Host-`` cookies velvetrope sets come back on the next request (over
``http://`` httpx and Starlette's ``TestClient`` would silently drop them), and it
sends ``Origin: https://testserver`` like a same-origin page. The app's velvetrope must
use that origin, the memory store and, to keep tests fast, the ``test-only`` hashing
profile: :func:`settings_for_tests` builds such settings, and the pytest plugin sets
the matching ``VELVETROPE_*`` variables before your tests import the app when your
pytest configuration says ``velvetrope_test_settings = true``
(:mod:`velvetrope.testing.plugin`).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from velvetrope.settings import Settings
from velvetrope.web.extension import Velvetrope

__all__ = [
    "ORIGIN",
    "PASSWORD",
    "TEST_ENVIRONMENT",
    "AppClient",
    "TestUser",
    "app_client",
    "bearer_for",
    "new_user",
    "settings_for_tests",
    "sign_in",
    "velvetrope_of",
]

ORIGIN = "https://testserver"
"""The origin the test client uses (and the app's velvetrope must be configured with)."""
PASSWORD = "correct horse battery staple"  # noqa: S105 - the test users' password
"""The password of :func:`new_user`'s accounts (long enough for the default policy)."""

TEST_ENVIRONMENT: Mapping[str, str] = {
    "VELVETROPE_DATABASE_URL": "memory://",
    "VELVETROPE_PUBLIC_ORIGIN": ORIGIN,
    "VELVETROPE_PASSWORD_HASH_PROFILE": "test-only",
    "VELVETROPE_REGISTRATIONS_PER_IP": "100000",
}
"""What the pytest plugin puts in the environment (unless a variable is already set)."""


def settings_for_tests(**changes: Any) -> Settings:
    """Settings for tests: the memory store, :data:`ORIGIN`, the ``test-only`` (fast)
    hashing profile (``owasp-minimum`` with another store), no sign-up ceiling;
    ``changes`` replace any of them. No ``.env``."""
    memory = changes.get("database_url", "memory://") == "memory://"
    chosen: dict[str, Any] = {
        "database_url": "memory://",
        "public_origin": ORIGIN,
        # test-only hashing is refused with a real store; owasp-minimum is the cheapest there
        "password_hash_profile": "test-only" if memory else "owasp-minimum",
        "registrations_per_ip": 100_000,
        **changes,
    }
    return Settings(_env_file=None, **chosen)


def velvetrope_of(app: Any) -> Velvetrope:
    """The velvetrope installed in ``app`` (``Velvetrope.install`` or ``create_app``).

    Raises:
        LookupError: ``app`` has none.
    """
    found = getattr(getattr(app, "state", None), "velvetrope", None)
    if not isinstance(found, Velvetrope):
        raise LookupError("this app has no velvetrope: call auth.install(app) when you build it")
    return found


class AppClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` on an app in-process, knowing the app's velvetrope."""

    velvetrope: Velvetrope


@dataclass(frozen=True)
class TestUser:
    """An account made by :func:`new_user`."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    id: str
    email: str
    password: str = field(repr=False)
    velvetrope: Velvetrope = field(repr=False, compare=False)


class _WithState:
    """Hands the lifespan's state to each request, as servers do (``request.state``)."""

    def __init__(self, app: ASGIApp, state: Mapping[str, Any]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in {"http", "websocket"}:
            scope = {**scope, "state": dict(self.state)}
        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def app_client(
    app: Starlette, *, client: tuple[str, int] = ("127.0.0.1", 50000)
) -> AsyncIterator[AppClient]:
    """Run ``app``'s lifespan and yield a client on it over its velvetrope's origin
    (``https://testserver`` with :func:`settings_for_tests`), sending that ``Origin``.

    Each use starts the app's velvetrope and stops it at the end; use one per test.

    Args:
        app: A FastAPI or Starlette app with velvetrope installed.
        client: The client address requests come from.

    Raises:
        LookupError: ``app`` has no velvetrope.
        ValueError: Its origin is not https (httpx would drop the ``Secure`` cookies).
    """
    auth = velvetrope_of(app)
    origin = auth.settings.origin
    if not origin.startswith("https://"):
        raise ValueError(
            f"app_client needs an https origin, so that Secure cookies come back; the app's "
            f"velvetrope has {origin} (use settings_for_tests() or {ORIGIN})"
        )
    async with app.router.lifespan_context(app) as state:
        asgi: ASGIApp = app if state is None else _WithState(app, state)
        transport = httpx.ASGITransport(app=asgi, client=client)
        async with AppClient(
            transport=transport, base_url=origin, headers={"Origin": origin}
        ) as http:
            http.velvetrope = auth
            yield http


async def new_user(
    target: AppClient | Velvetrope, email: str | None = None, *, password: str = PASSWORD
) -> TestUser:
    """Create an account (through the service: the register hooks run).

    Args:
        target: A client from :func:`app_client`, or the velvetrope itself.
        email: The address; a fresh ``user-<random>@example.com`` by default.
        password: The password (:data:`PASSWORD` by default).
    """
    auth = target.velvetrope if isinstance(target, AppClient) else target
    address = email or f"user-{secrets.token_hex(6)}@example.com"
    user = await auth.service.register(address, password)
    return TestUser(user.id, user.email, password, auth)


async def sign_in(client: httpx.AsyncClient, user: TestUser, *, remember: bool = True) -> str:
    """Sign ``user`` in through ``POST /auth/login``, as a browser app would: the client
    keeps the cookie and sends the sign-in's CSRF token as ``X-CSRF-Token`` from now on.

    Returns:
        The CSRF token.

    Raises:
        AssertionError: The sign-in was refused (the message has the answer).
    """
    response = await client.post(
        "/auth/login", json={"email": user.email, "password": user.password, "remember": remember}
    )
    if response.status_code != 200:
        raise AssertionError(f"sign-in refused: {response.status_code} {response.text}")
    token = str(response.json()["csrf_token"])
    client.headers["X-CSRF-Token"] = token
    return token


async def bearer_for(user: TestUser) -> dict[str, str]:
    """``Authorization`` headers with a fresh access token for ``user`` (issued
    directly, with its claims: no password hash and no sign-in hook run)."""
    pair = await user.velvetrope.service.tokens.issue_for(user.id)
    return {"Authorization": f"Bearer {pair.access_token}"}
