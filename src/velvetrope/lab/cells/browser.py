"""Cell 8, the browser claims, in Chromium (Playwright) when it is installed.

One node serves ``http://127.0.0.1:P`` (session cookies, ``SameSite=Lax``, ``HttpOnly``)
and lists ``http://localhost:Q`` as an allowed CORS origin; the lab serves a blank page
there. ``localhost`` and ``127.0.0.1`` are different *sites*, so a request from one to
the other is cross-site.

* An SPA on the node's origin signs in (the HttpOnly session cookie) and keeps an access
  token in ``localStorage``. A script injected into that page (the page's own CSP is
  bypassed, as an XSS on a page without one would be) reads the token, cannot read the
  cookie (``document.cookie``), and still makes a credentialed request that the cookie
  authenticates: session riding. HttpOnly stops theft of the cookie, not its use.
* The time one ``localStorage.getItem`` of the token takes (it is synchronous).
* A web worker on the page: ``localStorage`` is not there.
* From the page on ``localhost:Q``: ``fetch(..., {credentials: "include"})`` to the node
  (the Lax cookie is not sent: 401) and the same request with the token in an
  ``Authorization`` header (200, through CORS).

Each observation's value is the number of trials that agreed; ``outcome`` says what
they saw.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from velvetrope.lab.context import LabContext
from velvetrope.lab.model import CellResult, Figure, not_available
from velvetrope.lab.servers import EMAIL, PASSWORD, nodes
from velvetrope.lab.services import HOST, ServiceUnavailable
from velvetrope.lab.stores import store_env

__all__ = ["FIGURES", "chromium", "measure"]

READS = 20_000
FIGURES = {
    "xss.localstorage": ("injected script reads the token in localStorage", "trials"),
    "xss.httponly": ("injected script reads the HttpOnly session cookie", "trials"),
    "xss.session-riding": ("injected script makes a credentialed request", "trials"),
    "localstorage.read": ("one localStorage.getItem of the token", "us"),
    "worker.localstorage": ("localStorage in a web worker", "trials"),
    "cross-site.cookie": ("cross-site fetch with the SameSite=Lax cookie", "trials"),
    "cross-site.bearer": ("cross-site fetch with a bearer header (allowed CORS origin)", "trials"),
}
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

SIGN_IN = """async ([email, password]) => {
  const login = await fetch('/auth/login', {method: 'POST', credentials: 'include',
      headers: {'content-type': 'application/json'}, body: JSON.stringify({email, password})});
  const grant = await fetch('/auth/token', {method: 'POST',
      headers: {'content-type': 'application/x-www-form-urlencoded'},
      body: new URLSearchParams({grant_type: 'password', username: email, password})});
  localStorage.setItem('access_token', (await grant.json()).access_token);
  return login.status;
}"""
INJECTED = """async () => ({
  token: localStorage.getItem('access_token') || '',
  cookie: document.cookie,
  me: (await fetch('/auth/me', {credentials: 'include'})).status,
})"""
READ_COST = """(reads) => {
  const started = performance.now();
  let length = 0;
  for (let i = 0; i < reads; i++) length += localStorage.getItem('access_token').length;
  return [(performance.now() - started) * 1000 / reads, length];
}"""
WORKER = """() => new Promise((resolve) => {
  const code = "let r; try { r = typeof localStorage === 'undefined' ? 'undefined' : " +
               "'available'; localStorage.getItem('x'); } catch (e) { r = 'error: ' + e.name; }" +
               " postMessage(r);";
  const worker = new Worker(URL.createObjectURL(new Blob([code])));
  worker.onmessage = (event) => resolve(event.data);
  worker.onerror = (event) => resolve('worker error: ' + event.message);
})"""
CROSS_SITE = """async ([url, token]) => {
  const cookie = await fetch(url, {credentials: 'include'});
  const bearer = await fetch(url, {headers: {authorization: 'Bearer ' + token}});
  return [cookie.status, bearer.status];
}"""


def chromium() -> str | None:
    """Chromium's executable, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def _blank_site() -> Iterator[int]:
    class Blank(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>another site</title><p>another site"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((HOST, 0), Blank)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _agreed(key: str, outcomes: list[str]) -> Figure:
    label, unit = FIGURES[key]
    if len(set(outcomes)) != 1:
        return Figure(
            key,
            label,
            unit,
            value=float(len(outcomes)),
            outcome="trials disagreed: " + "; ".join(outcomes),
        )
    return Figure(key, label, unit, value=float(len(outcomes)), outcome=outcomes[0])


def _observe(ctx: LabContext, executable: str) -> dict[str, Figure]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional extra

    seen: dict[str, list[str]] = {key: [] for key in FIGURES if key != "localstorage.read"}
    reads: list[float] = []
    with _blank_site() as other_port:
        other = f"http://localhost:{other_port}"
        env = {**store_env("sqlite", ctx.scratch, ctx.services), "VELVETROPE_CORS_ORIGINS": other}
        with nodes(1, env, ctx.scratch) as (node,), sync_playwright() as driver:
            client = node.client()
            client.sign_up()
            client.close()
            browser = driver.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
            try:
                trials = ctx.pick(1, 3)
                for trial in range(trials):
                    ctx.step(f"trial {trial + 1} of {trials}")
                    with ctx.noise.round("browser", f"trial {trial + 1}"):
                        context = browser.new_context(bypass_csp=True)
                        context.set_default_timeout(15_000)
                        page = context.new_page()
                        page.goto(node.origin + "/signin")
                        if page.evaluate(SIGN_IN, [EMAIL, PASSWORD]) != 200:
                            raise ServiceUnavailable("the browser could not sign in")
                        found = page.evaluate(INJECTED)
                        token = str(found["token"])
                        seen["xss.localstorage"].append(
                            "readable: the script got the token"
                            if token.count(".") == 2
                            else "not readable"
                        )
                        seen["xss.httponly"].append(
                            "readable"
                            if "velvetrope-session" in found["cookie"]
                            else "not readable: document.cookie does not show it"
                        )
                        seen["xss.session-riding"].append(
                            f"{found['me']}: the request the script made was authenticated by "
                            "the cookie it cannot read"
                            if found["me"] == 200
                            else f"{found['me']}: refused"
                        )
                        cost, _length = page.evaluate(READ_COST, READS)
                        reads.append(float(cost))
                        seen["worker.localstorage"].append(
                            "not available: " + str(page.evaluate(WORKER))
                        )
                        away = context.new_page()
                        away.goto(other + "/")
                        cookie, bearer = away.evaluate(
                            CROSS_SITE, [node.origin + "/auth/me", token]
                        )
                        seen["cross-site.cookie"].append(
                            f"{cookie}: the cookie was not sent"
                            if cookie == 401
                            else f"{cookie}: the cookie was sent"
                        )
                        seen["cross-site.bearer"].append(
                            f"{bearer}: accepted" if bearer == 200 else f"{bearer}: refused"
                        )
                        context.close()
            finally:
                browser.close()
    figures = {key: _agreed(key, outcomes) for key, outcomes in seen.items()}
    label, unit = FIGURES["localstorage.read"]
    reads.sort()
    figures["localstorage.read"] = Figure(
        "localstorage.read",
        label,
        unit,
        value=max(reads[len(reads) // 2], 1e-6),
        outcome=f"median of {len(reads)} trial(s) of {READS:,} reads",
        extra={"max": reads[-1]},
    )
    return figures


def measure(ctx: LabContext, result: CellResult) -> None:
    """Fill ``result``."""
    executable = chromium()
    reason = None
    if executable is None:
        reason = "Chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright  # noqa: F401, PLC0415 - is the optional extra installed?
        except ImportError:
            reason = "Playwright is not installed (pip install 'velvetrope[lab]')"
    if reason is None and executable is not None:
        try:
            figures = _observe(ctx, executable)
            result.figures += [figures[key] for key in FIGURES]
            return
        except ServiceUnavailable as exc:
            reason = str(exc)
    for key, (label, unit) in FIGURES.items():
        result.figures.append(not_available(key, label, unit, reason or "unknown"))
