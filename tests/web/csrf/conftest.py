"""CSRF fixtures: the browser credential mode, a signed-in browser, a CORS-allowlisting
app, a bearer token. The store does not change what these checks decide, so the tests
run on the memory backend unless they say otherwise."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.services import PASSWORD, app_settings, asgi_client, started_service
from tests.web.csrf.helpers import TRUSTED, Browser, Mode, other_client, second_device, sign_in
from velvetrope import (
    AuthService,
    FrozenClock,
    PasswordHasher,
    Settings,
    Velvetrope,
    create_app,
)
from velvetrope.core.mail import ConsoleMailer
from velvetrope.stores import Stores


@pytest.fixture
def mode() -> Mode:
    """Session mode, unless a test parametrises ``mode`` itself."""
    return "session"


@pytest.fixture
async def service(stores: Stores, clock: FrozenClock, hasher: PasswordHasher) -> AuthService:
    """The shared service, with mail printed to a buffer: the verification-resend route
    then succeeds once its CSRF checks pass."""
    mailer = ConsoleMailer("velvetrope <no-reply@example.com>", io.StringIO())
    return await started_service(stores, clock=clock, hasher=hasher, mailer=mailer)


@pytest.fixture
def settings(mode: Mode) -> Settings:
    return app_settings(browser_credentials=mode)


@pytest.fixture
async def browser(
    bare_client: httpx.AsyncClient, service: AuthService, user_email: str, mode: Mode
) -> Browser:
    handle, alive = await second_device(service, user_email, mode)
    token = await sign_in(bare_client, user_email)
    return Browser(bare_client, token, user_email, handle, alive)


@pytest.fixture
def cors_settings(mode: Mode) -> Settings:
    return app_settings(
        browser_credentials=mode, cors_origins=f"{TRUSTED}, https://admin.example.com"
    )


@pytest.fixture
async def cors_browser(
    cors_settings: Settings, service: AuthService, user_email: str
) -> AsyncIterator[Browser]:
    vr = Velvetrope(cors_settings, service=service)
    async with asgi_client(create_app(velvetrope=vr)) as http:
        handle, alive = await second_device(service, user_email, cors_settings.browser_credentials)
        yield Browser(http, await sign_in(http, user_email), user_email, handle, alive)


@pytest.fixture
async def bearer(bare_client: httpx.AsyncClient, user_email: str) -> str:
    async with other_client(bare_client) as api:
        response = await api.post(
            "/auth/token",
            data={"grant_type": "password", "username": user_email, "password": PASSWORD},
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
