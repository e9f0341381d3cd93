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
* The time one ``localStorage.getItem`` of the token takes (it is synchronous), and
  what an object stored there reads back as (a string).
* A web worker on the page: is ``localStorage`` there?
* From the page on ``localhost:Q``: ``fetch(..., {credentials: "include"})`` to the node
  (the Lax cookie is not sent: 401) and the same request with the token in an
  ``Authorization`` header (200, through CORS).

Each observation's value is the number of trials; ``outcome`` says what they saw, and
``extra`` counts the trials that saw it (``readable``, ``accepted``, ``available``) with
the HTTP status when every trial got the same one: the verdicts read those numbers.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
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
    "localstorage.object": ("an object stored in localStorage, read back", "trials"),
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
STORE_OBJECT = """() => {
  localStorage.setItem('velvetrope-lab-object', {roles: ['admin']});
  const back = localStorage.getItem('velvetrope-lab-object');
  localStorage.removeItem('velvetrope-lab-object');
  return [typeof back, String(back)];
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
    """Chromium's executable: ``chromium`` or ``chromium-browser`` on ``PATH`` first,
    else the browser ``playwright install chromium`` put in Playwright's own folder."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or _playwright_chromium()


def _playwright_chromium() -> str | None:
    """The executable of Playwright's own Chromium, if it was installed."""
    try:
        from playwright.sync_api import Error, sync_playwright  # noqa: PLC0415 - optional
    except ImportError:
        return None
    try:
        with sync_playwright() as driver:
            path = driver.chromium.executable_path
    except Error:
        return None
    return path if Path(path).is_file() else None


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


Seen = tuple[str, dict[str, float]]  # one trial: what it saw in words, and as numbers


def _agreed(key: str, trials: list[Seen]) -> Figure:
    """One figure from the trials: the outcome they agreed on (or each one), and in
    ``extra`` how many trials saw each thing (``readable``, ``accepted``, ...) and the
    HTTP status when every trial got the same one."""
    label, unit = FIGURES[key]
    outcomes = [outcome for outcome, _flags in trials]
    extra: dict[str, float] = {}
    for _outcome, flags in trials:
        for name, flag in flags.items():
            extra[name] = extra.get(name, 0.0) + flag
    statuses = {flags["status"] for _outcome, flags in trials if "status" in flags}
    extra.pop("status", None)
    if len(statuses) == 1:
        extra["status"] = statuses.pop()
    outcome = outcomes[0] if len(set(outcomes)) == 1 else "trials disagreed: " + "; ".join(outcomes)
    return Figure(key, label, unit, value=float(len(trials)), outcome=outcome, extra=extra)


def read_outcome(token: str) -> Seen:
    """What the injected script's read of ``localStorage`` gave."""
    readable = token.count(".") == 2
    return ("readable: the script got the token" if readable else "not readable"), {
        "readable": float(readable)
    }


def cookie_outcome(cookies: str) -> Seen:
    """Whether ``document.cookie`` showed the session cookie."""
    readable = "velvetrope-session" in cookies
    words = "readable" if readable else "not readable: document.cookie does not show it"
    return words, {"readable": float(readable)}


def riding_outcome(status: int) -> Seen:
    """The script's credentialed request: authenticated by the cookie, or not."""
    accepted = status == 200
    words = (
        f"{status}: the request the script made was authenticated by the cookie it cannot read"
        if accepted
        else f"{status}: refused"
    )
    return words, {
        "accepted": float(accepted),
        "refused": float(status in (401, 403)),
        "status": float(status),
    }


def object_outcome(kind: str, back: str) -> Seen:
    """What ``localStorage`` gave back for an object: a string (``[object Object]``)."""
    if kind == "string":
        return f'a string: "{back}"', {"string": 1.0}
    return f"a {kind}: {back}", {"string": 0.0}


def worker_outcome(answer: object) -> Seen:
    """The worker's answer (``undefined``, ``available``, ``error: ...``) in words."""
    available = answer == "available"
    words = "available: a worker can read localStorage" if available else f"not available: {answer}"
    return words, {"available": float(available)}


def cross_site_outcome(status: int, *, credential: str) -> Seen:
    """A cross-site request with ``credential`` (``cookie`` or ``bearer``): accepted
    (200), refused (401, 403), or another status, said as it is."""
    accepted = status == 200
    if credential == "cookie":
        words = {200: "the cookie was sent", 401: "the cookie was not sent"}
    else:
        words = {200: "accepted", 401: "refused", 403: "refused"}
    said = words.get(status, "an unexpected answer")
    return f"{status}: {said}", {
        "accepted": float(accepted),
        "refused": float(status in (401, 403)),
        "status": float(status),
    }


def _observe(ctx: LabContext, executable: str) -> dict[str, Figure]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional extra

    seen: dict[str, list[Seen]] = {key: [] for key in FIGURES if key != "localstorage.read"}
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
                        seen["xss.localstorage"].append(read_outcome(token))
                        seen["xss.httponly"].append(cookie_outcome(str(found["cookie"])))
                        seen["xss.session-riding"].append(riding_outcome(int(found["me"])))
                        cost, _length = page.evaluate(READ_COST, READS)
                        reads.append(float(cost))
                        kind, back = page.evaluate(STORE_OBJECT)
                        seen["localstorage.object"].append(object_outcome(str(kind), str(back)))
                        seen["worker.localstorage"].append(worker_outcome(page.evaluate(WORKER)))
                        away = context.new_page()
                        away.goto(other + "/")
                        cookie, bearer = away.evaluate(
                            CROSS_SITE, [node.origin + "/auth/me", token]
                        )
                        seen["cross-site.cookie"].append(
                            cross_site_outcome(int(cookie), credential="cookie")
                        )
                        seen["cross-site.bearer"].append(
                            cross_site_outcome(int(bearer), credential="bearer")
                        )
                        context.close()
            finally:
                browser.close()
    figures = {key: _agreed(key, trials) for key, trials in seen.items()}
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
        reason = (
            "Chromium is not installed (apt-get install chromium, or playwright install chromium)"
        )
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
