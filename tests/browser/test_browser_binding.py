"""Bound credentials in a real Chromium: device-bound sessions (DBSC) and DPoP from WebCrypto.

Debian's Chromium 156 runs DBSC headless with software keys when launched with the
DBSC features; it needs https that it trusts, so ``velvetrope serve`` runs with
``--tls-cert``/``--tls-key`` and a throwaway CA sits in the NSS database of a
temporary ``HOME`` (:mod:`tests.support.tls`). A fresh persistent profile per test;
the DevTools protocol reports DBSC events (registration, challenges, refreshes).

The bound cookie lives 5 s here (``VELVETROPE_BOUND_COOKIE_TTL``), so a copied cookie
jar dies within seconds. Chromium renews any bound cookie with 120 s or less left on
each request, which would soon meet its signing quota (6 signatures in 9 minutes), so
the profile turns the quota off (``DeviceBoundSessions:RefreshQuota/false``).

The DPoP page is served by the test's own loopback server (another origin, listed in
``VELVETROPE_CORS_ORIGINS``): velvetrope's pages allow no script at all, and an SPA
on its own origin is how a browser client uses DPoP, CORS preflight included.
"""

from __future__ import annotations

import os
import re
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Playwright

from tests.browser.conftest import (
    ACTION_TIMEOUT_MS,
    LAUNCH_ARGS,
    Attacker,
    new_email,
    require_chromium,
)
from tests.support.server import HTTP_TIMEOUT, ServerProcess, Servers, register
from tests.support.services import PASSWORD
from tests.support.tls import Certificates, make_certificates, trusting_home

pytestmark = pytest.mark.browser

DBSC_FEATURES = (
    "DeviceBoundSessions:RefreshQuota/false,DeviceBoundSessionsDevTools,"
    "EnableBoundSessionCredentialsSoftwareKeysForManualTesting"
)
BOUND = "__Host-velvetrope-bound"
SESSION = "__Host-velvetrope-session"
SERVER_ENV = {
    "VELVETROPE_PASSWORD_HASH_PROFILE": "owasp-minimum",
    "VELVETROPE_REGISTRATIONS_PER_IP": "1000",
}


@dataclass(frozen=True)
class Tls:
    certs: Certificates
    home: Path

    def http(self, server: ServerProcess) -> httpx.Client:
        """A plain client that trusts the test CA and keeps no cookies of its own."""
        assert server.base_url is not None
        trust = ssl.create_default_context(cafile=str(self.certs.ca))
        return httpx.Client(
            base_url=server.base_url,
            verify=trust,
            timeout=HTTP_TIMEOUT,
            headers={"Origin": server.base_url},
        )


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    require_chromium()
    root = tmp_path_factory.mktemp("dbsc")
    certs = make_certificates(root / "certs")
    return Tls(certs, trusting_home(root / "home", certs.ca))


def serve(servers: Servers, root: Path, tls: Tls, **env: str) -> ServerProcess:
    server = servers.start(
        root / "vr.db",
        "--tls-cert",
        str(tls.certs.cert),
        "--tls-key",
        str(tls.certs.key),
        env={**SERVER_ENV, **env},
    )
    assert server.base_url is not None
    return server


@pytest.fixture(scope="module")
def offering(
    tmp_path_factory: pytest.TempPathFactory, tls: Tls, attacker: Attacker
) -> Iterator[ServerProcess]:
    """``offer`` (the default), a 5 s bound cookie (and a 1 s grace after sign-in), the
    DPoP test page's origin allowed."""
    root = tmp_path_factory.mktemp("offer")
    servers = Servers(root)
    yield serve(
        servers,
        root,
        tls,
        VELVETROPE_BOUND_COOKIE_TTL="5",
        VELVETROPE_SESSION_BINDING_GRACE="1",
        VELVETROPE_CORS_ORIGINS=attacker.url,
    )
    servers.stop_all()


@pytest.fixture(scope="module")
def requiring(tmp_path_factory: pytest.TempPathFactory, tls: Tls) -> Iterator[ServerProcess]:
    """``require``: an unbound session is refused a second after sign-in."""
    root = tmp_path_factory.mktemp("require")
    servers = Servers(root)
    yield serve(
        servers,
        root,
        tls,
        VELVETROPE_SESSION_BINDING="require",
        VELVETROPE_SESSION_BINDING_GRACE="1",
    )
    servers.stop_all()


@dataclass
class Chromium:
    """One persistent profile, its page, and the DBSC events DevTools reported."""

    context: BrowserContext
    page: Page
    events: list[dict[str, Any]]

    def wait_for(self, ready: Callable[[], bool], timeout: float = 15.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if ready():
                return True
            self.page.wait_for_timeout(100)  # lets Playwright deliver the CDP events
        return False

    def of(self, kind: str, *, succeeded: bool = True) -> list[dict[str, Any]]:
        return [e for e in self.events if kind in e and e["succeeded"] == succeeded]


@pytest.fixture
def launch(playwright: Playwright, tls: Tls, tmp_path: Path) -> Iterator[Callable[..., Chromium]]:
    opened: list[BrowserContext] = []

    def start(*, dbsc: bool) -> Chromium:
        args = [*LAUNCH_ARGS, *([f"--enable-features={DBSC_FEATURES}"] if dbsc else [])]
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / f"profile-{len(opened)}"),
            executable_path=require_chromium(),
            headless=True,
            args=args,
            env={**os.environ, "HOME": str(tls.home)},
        )
        opened.append(context)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        page = context.pages[0] if context.pages else context.new_page()
        events: list[dict[str, Any]] = []
        cdp = context.new_cdp_session(page)
        # Playwright refuses a bound builtin (events.append) as a handler.
        cdp.on("Network.deviceBoundSessionEventOccurred", lambda event: events.append(event))  # noqa: PLW0108
        cdp.send("Network.enableDeviceBoundSessions", {"enable": True})
        return Chromium(context, page, events)

    yield start
    for context in opened:
        context.close()


def sign_in(browser: Chromium, server: ServerProcess, tls: Tls) -> str:
    """Create an account over HTTP, sign in through the page; return the email."""
    email = new_email()
    with tls.http(server) as http:
        register(http, email)
    page = browser.page
    page.goto(f"{server.base_url}/signin")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_load_state()
    assert re.search(r"/account$", page.url), (page.url, page.content()[:2000], browser.events)
    return email


def refreshed(browser: Chromium, count: int) -> bool:
    return len(browser.of("refreshEventDetails")) >= count


def cookies(browser: Chromium) -> dict[str, str]:
    return {
        c["name"]: c["value"] for c in browser.context.cookies() if c["name"] in (SESSION, BOUND)
    }


def test_DBSC_04_chromium_binds_its_session_and_a_copied_cookie_jar_dies(
    launch: Callable[..., Chromium], offering: ServerProcess, tls: Tls
) -> None:
    browser = launch(dbsc=True)
    sign_in(browser, offering, tls)
    signed_in = time.monotonic()
    assert browser.wait_for(lambda: bool(browser.of("creationEventDetails"))), browser.events
    [created] = browser.of("creationEventDetails")
    session_id = created["sessionId"]
    # Two refreshes for sure: without the bound cookie Chromium holds the request back,
    # answers a 403 challenge with its key, and sends it with the new cookie.
    for count in (1, 2):
        browser.context.clear_cookies(name=BOUND)
        browser.page.goto(f"{offering.base_url}/account")
        assert re.search(r"/account$", browser.page.url), browser.page.url
        assert browser.wait_for(partial(refreshed, browser, count)), browser.events
    assert len(browser.of("challengeEventDetails")) >= 2
    assert all(e["sessionId"] == session_id for e in browser.of("refreshEventDetails"))
    assert not browser.of("refreshEventDetails", succeeded=False), browser.events
    assert "Device-bound" in browser.page.inner_text(".device.current")
    # Malware copies the cookie jar into another client: it works only until the
    # short cookie expires, and the long-lived session cookie alone never does.
    stolen = cookies(browser)
    jar = "; ".join(f"{name}={value}" for name, value in stolen.items())
    expiry = int(stolen[BOUND].split(".")[0])
    time.sleep(max(0.0, signed_in + 1.2 - time.monotonic()))  # past the grace after sign-in
    with tls.http(offering) as thief:
        alone = thief.get("/auth/me", headers={"Cookie": f"{SESSION}={stolen[SESSION]}"})
        assert alone.status_code == 401
        assert alone.json()["error"] == "device_binding_required"
        time.sleep(max(0.0, expiry - time.time()) + 0.5)
        late = thief.get("/auth/me", headers={"Cookie": jar})
        assert late.status_code == 401, late.text
        assert late.json()["error"] == "device_binding_required"
    # The browser carries on: it proves its key again and keeps its session.
    browser.page.goto(f"{offering.base_url}/account")
    assert re.search(r"/account$", browser.page.url), (browser.events, offering.stderr[-3000:])
    fresh = cookies(browser)[BOUND]
    assert int(fresh.split(".")[0]) > expiry


def test_DBSC_08_without_dbsc_a_browser_signs_in_unbound_under_offer(
    launch: Callable[..., Chromium], offering: ServerProcess, tls: Tls
) -> None:
    browser = launch(dbsc=False)
    sign_in(browser, offering, tls)
    browser.page.wait_for_timeout(500)
    assert BOUND not in cookies(browser)
    browser.page.goto(f"{offering.base_url}/account")
    assert re.search(r"/account$", browser.page.url)
    assert "Device-bound" not in browser.page.inner_text(".device.current")


def test_DBSC_08_under_require_only_a_browser_that_binds_keeps_its_session(
    launch: Callable[..., Chromium], requiring: ServerProcess, tls: Tls
) -> None:
    plain, binding = launch(dbsc=False), launch(dbsc=True)
    sign_in(plain, requiring, tls)
    sign_in(binding, requiring, tls)
    assert binding.wait_for(lambda: bool(binding.of("creationEventDetails")))
    time.sleep(1.2)  # past the grace
    plain.page.goto(f"{requiring.base_url}/account")
    assert re.search(r"/signin\?notice=expired$", plain.page.url), plain.page.url
    binding.page.goto(f"{requiring.base_url}/account")
    assert re.search(r"/account$", binding.page.url), binding.page.url


DPOP_PAGE = """<!doctype html><meta charset="utf-8"><title>DPoP with WebCrypto</title>
<script>
const b64 = bytes => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
const text = s => new TextEncoder().encode(s);
window.dpop = async (base, email, password) => {
  const keys = await crypto.subtle.generateKey(
    {name: "ECDSA", namedCurve: "P-256"}, false, ["sign", "verify"]);
  const exported = await crypto.subtle.exportKey("jwk", keys.publicKey);
  const jwk = {kty: exported.kty, crv: exported.crv, x: exported.x, y: exported.y};
  let extractable = true;
  try { await crypto.subtle.exportKey("jwk", keys.privateKey); } catch { extractable = false; }
  const proof = async (htm, htu, token) => {
    const claims = {htm, htu, iat: Math.floor(Date.now() / 1000),
                    jti: b64(crypto.getRandomValues(new Uint8Array(16)))};
    if (token) claims.ath = b64(await crypto.subtle.digest("SHA-256", text(token)));
    const input = b64(text(JSON.stringify({alg: "ES256", typ: "dpop+jwt", jwk}))) + "." +
                  b64(text(JSON.stringify(claims)));
    const signature = await crypto.subtle.sign(
      {name: "ECDSA", hash: "SHA-256"}, keys.privateKey, text(input));
    return input + "." + b64(signature);
  };
  const tokenResponse = await fetch(base + "/auth/token", {
    method: "POST",
    headers: {"DPoP": await proof("POST", base + "/auth/token")},
    body: new URLSearchParams({grant_type: "password", username: email, password}),
  });
  const tokens = await tokenResponse.json();
  const me = await fetch(base + "/auth/me", {headers: {
    "Authorization": "DPoP " + tokens.access_token,
    "DPoP": await proof("GET", base + "/auth/me", tokens.access_token)}});
  const bearer = await fetch(base + "/auth/me", {headers: {
    "Authorization": "Bearer " + tokens.access_token}});
  return {extractable, tokenType: tokens.token_type, me: me.status, email: (await me.json()).email,
          bearer: bearer.status, challenge: bearer.headers.get("WWW-Authenticate")};
};
</script>"""


def test_DPOP_10_a_page_with_a_non_extractable_webcrypto_key_gets_dpop_tokens(
    launch: Callable[..., Chromium], offering: ServerProcess, tls: Tls, attacker: Attacker
) -> None:
    email = new_email()
    with tls.http(offering) as http:
        register(http, email)
    browser = launch(dbsc=False)
    browser.page.goto(attacker.serve(DPOP_PAGE))
    result = browser.page.evaluate(
        "([base, email, password]) => window.dpop(base, email, password)",
        [offering.base_url, email, PASSWORD],
    )
    assert result["extractable"] is False
    assert result["tokenType"] == "DPoP"
    assert (result["me"], result["email"]) == (200, email)
    assert result["bearer"] == 401  # the token alone, as a bearer token: refused
    assert result["challenge"].startswith('DPoP error="invalid_token"')
