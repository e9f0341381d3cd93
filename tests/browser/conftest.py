"""Real Chromium against ``velvetrope serve``: the pages as a person (and an attacker) meets them.

Debian's ``chromium`` is driven with Playwright's sync API: one browser per test
module (module scope, not session: the sync API holds an event loop on the main thread
while it runs, which would break every asyncio test after it), a new context (cookie
jar) per test. Each browser credential mode gets its own server, started once per
module as a real process on a free loopback port. Without a ``chromium`` on PATH the
tests are skipped, and fail instead when ``CI`` is set (:mod:`tests.support.require`): a browser
suite never passes silently.

Screenshots go to the directory named by ``VELVETROPE_SCREENSHOTS`` (``scripts/screenshots``
sets ``docs/screenshots``), else to a temporary directory: tests never write to the tree.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    ViewportSize,
    sync_playwright,
)

from tests.support.require import require
from tests.support.server import HTTP_TIMEOUT, ServerProcess, Servers
from tests.support.services import PASSWORD

__all__ = ["PASSWORD", "Attacker", "Screenshots", "Site", "new_email", "sign_in", "sign_up"]

MODES = ("session", "jwt-cookie")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP: ViewportSize = {"width": 1000, "height": 760}
ACTION_TIMEOUT_MS = 10_000
PHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
)
SERVER_ENV = {
    "VELVETROPE_PASSWORD_HASH_PROFILE": "owasp-minimum",  # fast hashes: many sign-ins
    "VELVETROPE_REGISTRATIONS_PER_IP": "1000",  # every test signs up from 127.0.0.1
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real Chromium (Playwright)")


def require_chromium() -> str:
    """The ``chromium`` executable; skip the test without one (fail it under CI)."""
    return require(
        shutil.which("chromium"),
        "chromium is not on PATH (apt-get install chromium); the browser tests need it",
    )


@dataclass(frozen=True)
class Site:
    """One running server and the browser credential mode it was started with."""

    mode: str
    url: str
    server: ServerProcess

    @property
    def credential_cookies(self) -> tuple[str, ...]:
        """The cookies that carry a sign-in in this mode."""
        if self.mode == "jwt-cookie":
            return ("__Host-velvetrope-access", "__Host-velvetrope-refresh")
        return ("__Host-velvetrope-session",)

    def http(self) -> httpx.Client:
        """A plain HTTP client (no cookie jar, same-origin ``Origin``) for checks from outside."""
        return self.server.client()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    require_chromium()
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=require_chromium(), args=LAUNCH_ARGS)
    yield launched
    launched.close()


@pytest.fixture(scope="module", params=MODES)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """A ``velvetrope serve`` process per browser credential mode, shared by the tests."""
    mode = str(request.param)
    workdir = tmp_path_factory.mktemp(f"browser-{mode}")
    servers = Servers(workdir)
    env = {**SERVER_ENV, "VELVETROPE_BROWSER_CREDENTIALS": mode}
    server = servers.start(workdir / "vr.db", env=env)
    assert server.base_url is not None
    yield Site(mode, server.base_url, server)
    servers.stop_all()


@pytest.fixture
def context(browser: Browser, site: Site) -> Iterator[BrowserContext]:
    """A fresh browser profile (its own cookie jar) on ``site``, desktop-sized."""
    opened = browser.new_context(base_url=site.url, viewport=DESKTOP)
    opened.set_default_timeout(ACTION_TIMEOUT_MS)
    yield opened
    opened.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def phone(browser: Browser, site: Site) -> Iterator[BrowserContext]:
    """A second profile that looks like an iPhone: small screen, touch, Safari's User-Agent."""
    opened = browser.new_context(
        base_url=site.url,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        user_agent=PHONE_UA,
    )
    opened.set_default_timeout(ACTION_TIMEOUT_MS)
    yield opened
    opened.close()


@dataclass
class Screenshots:
    """Where screenshots go; only one mode's pages are kept (both look the same)."""

    directory: Path
    mode: str = "session"

    def take(self, page: Page, name: str, site: Site) -> None:
        if site.mode == self.mode:
            page.screenshot(
                path=self.directory / f"{name}.png", full_page=True, animations="disabled"
            )


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Screenshots:
    configured = os.environ.get("VELVETROPE_SCREENSHOTS")
    directory = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return Screenshots(directory)


@dataclass
class Attacker:
    """A site on another loopback port that serves whatever page a test gives it.

    ``127.0.0.1:<other port>`` is another *origin* but the same *site* as the server, so
    the browser attaches the victim's cookies, ``SameSite=Strict`` ones included: only
    the Fetch-Metadata/Origin check and the CSRF token stand in the way.
    """

    url: str
    pages: dict[str, str] = field(default_factory=dict)

    def serve(self, html: str) -> str:
        """Publish ``html``; return its URL."""
        path = f"/{uuid.uuid4().hex}.html"
        self.pages[path] = html
        return self.url + path


@pytest.fixture(scope="module")
def attacker() -> Iterator[Attacker]:
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode("utf-8")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the attacker's requests are no news."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Attacker(f"http://127.0.0.1:{server.server_address[1]}", pages)
    server.shutdown()
    server.server_close()
    thread.join(HTTP_TIMEOUT)


def new_email() -> str:
    """A fresh address, so tests sharing a server never meet each other's accounts."""
    return f"ann-{uuid.uuid4().hex[:10]}@example.com"


def sign_up(page: Page, email: str, password: str = PASSWORD) -> None:
    """Create an account through the sign-up page; the browser lands on /account."""
    page.goto("/signup")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("form button[type=submit]")
    page.wait_for_url("**/account")


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Sign in through the sign-in page; the browser lands on /account."""
    page.goto("/signin")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("form button[type=submit]")
    page.wait_for_url("**/account")
