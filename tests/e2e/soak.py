"""A soak with faults (RES-03): three ``velvetrope serve`` nodes on PostgreSQL + Redis
carry mixed traffic while Redis, then PostgreSQL, then one node are killed and
restarted; afterwards the stores are checked: nothing let through, nothing lost.

Run the documented long form with::

    python -m tests.e2e.soak --minutes 10

It prints the figures and writes them to ``benchmarks/results/soak-faults.json`` and
``soak-faults.md`` (``--results DIR`` elsewhere, ``--no-results`` nowhere).
(``tests/e2e/test_soak.py`` runs a short form of about 40 seconds in the suite.)

Everything runs on loopback: a private ``redis-server`` (append-only file, fsync on
every write, so a kill loses nothing it acknowledged) and a private PostgreSQL
cluster (``initdb``/``pg_ctl``), each on a spare port, and the three nodes.

The traffic (:class:`Traffic`, shared with the Redis Cluster failover test) keeps a
ledger of what each answer established: accounts created, sessions and token
families handed out, credentials signed out (device sign-out, sign-out everywhere,
refresh-token reuse). A request whose outcome is unknown (no answer, a 503 on a
write) makes what it touched *uncertain*, excluded from the checks. The checks:

* **let through**: a forged or never-issued credential answered 200 (must be 0);
* **after revocation**: a credential answered 200 to a request sent longer than the
  documented bound after its sign-out was acknowledged (must be 0). The bound is the
  session near-cache's TTL for sessions (``VELVETROPE_SESSION_CACHE_TTL``, 1 s) and
  the revocation staleness for access tokens (5 s), each plus 0.5 s of slack;
* **lost**: an account, session or token family the ledger holds as live that the
  stores (read directly afterwards) do not (must be 0);
* **server errors**: any 5xx but a 503 with a code, and any traceback in a node's log;
* **recovery**: seconds from each restart until a fresh sign-in and an authenticated
  read succeed on every node.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import secrets
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from tests.support.postgres import TempCluster, create_database
from tests.support.redis import RedisServer, require_redis_server
from tests.support.server import ServerProcess, Servers
from velvetrope.core.ids import new_secret, secret_digest
from velvetrope.stores.registry import open_stores

__all__ = ["Fault", "Figures", "Traffic", "main", "node_env", "run_soak", "start_nodes"]

ISSUER = "https://auth.soak.test"
PASSWORD = "correct horse battery staple 42"
COOKIE = "__Host-velvetrope-session"
SESSION_BOUND = 1.0 + 0.5  # seconds: the near-cache TTL, plus slack
TOKEN_BOUND = 5.0 + 0.5  # seconds: the revocation staleness, plus slack
REFRESH_GRACE = 1  # seconds (VELVETROPE_REFRESH_GRACE): replays older than it are theft
RECOVER_LIMIT = 30.0  # seconds after a restart within which every node must serve again
WORKERS = 6
HTTP_TIMEOUT = 5.0
MAX_LIVE_SESSIONS = 5  # per user, well under VELVETROPE_SESSION_MAX_PER_USER (10)
REDIS_AOF = ("--appendonly", "yes", "--appendfsync", "always")
RNG = secrets.SystemRandom()


def node_env(database: str, redis_url: str) -> dict[str, str]:
    """The environment of every node: one issuer, cheap hashing, no per-address limits
    (all traffic comes from 127.0.0.1), a short refresh grace so replays are theft soon."""
    return {
        "VELVETROPE_DATABASE_URL": database,
        "VELVETROPE_REDIS_URL": redis_url,
        "VELVETROPE_TOKEN_ISSUER": ISSUER,
        "VELVETROPE_TOKEN_AUDIENCE": ISSUER,
        "VELVETROPE_PASSWORD_HASH_PROFILE": "owasp-minimum",
        "VELVETROPE_LOGIN_IP_FAILURES": "1000000",
        "VELVETROPE_REGISTRATIONS_PER_IP": "1000000",
        "VELVETROPE_REFRESH_GRACE": str(REFRESH_GRACE),
    }


def start_nodes(servers: Servers, env: dict[str, str], count: int = 3) -> list[ServerProcess]:
    nodes = [servers.spawn("--port", "0", env=env) for _ in range(count)]
    for node in nodes:
        node.start()
    return nodes


# --- the ledger -------------------------------------------------------------------------


@dataclass
class Credential:
    """A session or a token family the traffic holds, and what it knows of its state."""

    kind: Literal["session", "family"]
    email: str
    secrets: list[str]  # the session ID, or every access token of the family
    issued: float
    csrf: str = ""
    refresh: str = ""  # the family's current refresh token
    rotated: list[tuple[str, float]] = field(default_factory=list)  # moved-past tokens
    revoked_at: float | None = None  # when a sign-out of it was acknowledged
    uncertain: bool = False  # a request that may have changed it got no clear answer
    busy: bool = False  # a worker is using it for a state change

    @property
    def bound(self) -> float:
        return SESSION_BOUND if self.kind == "session" else TOKEN_BOUND

    def headers(self) -> dict[str, str]:
        if self.kind == "session":
            return {"Cookie": f"{COOKIE}={self.secrets[0]}", "X-CSRF-Token": self.csrf}
        return {"Authorization": f"Bearer {RNG.choice(self.secrets)}"}


@dataclass
class Figures:
    """What the soak measured; ``failures`` lists every broken promise."""

    sent: int = 0
    answers: Counter[tuple[int, str]] = field(default_factory=Counter)
    let_through: int = 0
    after_revocation: int = 0
    lost: dict[str, int] = field(default_factory=lambda: {"users": 0, "sessions": 0, "families": 0})
    checked: dict[str, int] = field(
        default_factory=lambda: {"users": 0, "sessions": 0, "families": 0}
    )
    recovery: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def report(self, title: str) -> str:
        by_status = ", ".join(
            f"{status or 'no answer'} {code or '-'}: {n}"
            for (status, code), n in sorted(self.answers.items())
        )
        recovery = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.recovery.items())
        lost = ", ".join(f"{k} {v} of {self.checked[k]}" for k, v in self.lost.items())
        return (
            f"{title}\n"
            f"  requests sent: {self.sent}\n"
            f"  answers by status and code: {by_status}\n"
            f"  unauthenticated requests let through: {self.let_through}\n"
            f"  answered 200 after revocation beyond the bound: {self.after_revocation}\n"
            f"  lost: {lost}\n"
            f"  recovery after each fault: {recovery}\n"
            f"  failures: {len(self.failures)}"
            + "".join(f"\n    - {failure}" for failure in self.failures[:20])
        )


def _code(response: httpx.Response) -> str:
    if response.status_code < 400:
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forged_tokens(genuine: str) -> list[str]:
    """Tokens that must never pass: the genuine one with its claims changed, with
    ``alg: none``, with a made-up key id, and plain noise."""
    header, payload, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    changed = _b64(json.dumps({**claims, "sub": "someone-else"}).encode())
    none = _b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    other_kid = _b64(json.dumps({**json.loads(_unb64(header)), "kid": "made-up-kid"}).encode())
    return [
        f"{header}.{changed}.{signature}",
        f"{none}.{payload}.",
        f"{other_kid}.{payload}.{signature}",
        f"{header}.{payload}.{_b64(secrets.token_bytes(64))}",
        _b64(secrets.token_bytes(48)),
    ]


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- the traffic ------------------------------------------------------------------------


class Traffic:
    """Mixed traffic over the nodes in :attr:`urls` (replaced when a node restarts)."""

    def __init__(self, urls: list[str], figures: Figures) -> None:
        self.urls = urls
        self.figures = figures
        self.users: dict[str, bool] = {}  # email -> created (False: uncertain)
        self.credentials: list[Credential] = []
        self.genuine_token = ""
        self.canary = ""  # an account no wrong guess touches: it proves recovery
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._stop = asyncio.Event()
        self._serial = 0

    # plumbing

    def _client(self, url: str) -> httpx.AsyncClient:
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = httpx.AsyncClient(
                base_url=url, timeout=HTTP_TIMEOUT, headers={"Origin": url}
            )
        return client

    async def request(
        self, method: str, path: str, *, node: int | None = None, **kwargs: Any
    ) -> httpx.Response | None:
        """Send one request to a node (random unless given); count its answer; ``None``
        when there was no HTTP answer."""
        url = self.urls[RNG.randrange(len(self.urls)) if node is None else node]
        self.figures.sent += 1
        try:
            response = await self._client(url).request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.figures.answers[(0, type(exc).__name__)] += 1
            return None
        code = _code(response)
        self.figures.answers[(response.status_code, code)] += 1
        if response.status_code >= 500 and not (response.status_code == 503 and code):
            self.figures.failures.append(
                f"{method} {path} answered {response.status_code} {code or response.text[:80]}"
            )
        return response

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    def _email(self) -> str:
        self._serial += 1
        return f"soak{self._serial}-{secrets.token_hex(3)}@example.com"

    # operations

    async def sign_up(self) -> None:
        email = self._email()
        response = await self.request(
            "POST", "/auth/register", json={"email": email, "password": PASSWORD}
        )
        if response is not None and response.status_code == 201:
            self.users[email] = True
        elif response is None or response.status_code >= 500:
            self.users[email] = False  # it may exist

    def _live(self, kind: str | None = None) -> list[Credential]:
        return [
            c
            for c in self.credentials
            if c.revoked_at is None and not c.uncertain and (kind is None or c.kind == kind)
        ]

    def _user_for_sign_in(self) -> str | None:
        created = [email for email, sure in self.users.items() if sure]
        if not created:
            return None
        email = RNG.choice(created)
        live = sum(1 for c in self._live() if c.email == email)
        return email if live < MAX_LIVE_SESSIONS else None

    async def sign_in_session(self) -> None:
        email = self._user_for_sign_in()
        if email is None:
            return
        response = await self.request(
            "POST", "/auth/login", json={"email": email, "password": PASSWORD}
        )
        if response is None or response.status_code != 200:
            return
        secret = response.cookies.get(COOKIE) or _cookie(response)
        self.credentials.append(
            Credential(
                "session", email, [secret], time.monotonic(), csrf=response.json()["csrf_token"]
            )
        )

    async def sign_in_tokens(self) -> None:
        email = self._user_for_sign_in()
        if email is None:
            return
        response = await self.request(
            "POST",
            "/auth/token",
            data={"grant_type": "password", "username": email, "password": PASSWORD},
        )
        if response is None or response.status_code != 200:
            return
        body = response.json()
        self.genuine_token = body["access_token"]
        self.credentials.append(
            Credential(
                "family",
                email,
                [body["access_token"]],
                time.monotonic(),
                refresh=body["refresh_token"],
            )
        )

    async def sign_in_wrong(self) -> None:
        recent = [email for email in list(self.users)[-2:] if email != self.canary]
        email = RNG.choice([*recent, self._email()])
        await self.request("POST", "/auth/login", json={"email": email, "password": "wrong one"})

    async def read(self) -> None:
        """An authenticated read with any credential held, live or signed out."""
        if not self.credentials:
            return
        credential = RNG.choice(self.credentials)
        sent = time.monotonic()
        response = await self.request("GET", "/auth/me", headers=credential.headers())
        if response is None or response.status_code != 200:
            return
        if credential.revoked_at is not None and sent > credential.revoked_at + credential.bound:
            self.figures.after_revocation += 1
            self.figures.failures.append(
                f"a {credential.kind} answered 200 {sent - credential.revoked_at:.2f} s after "
                "its sign-out was acknowledged"
            )

    async def forged(self) -> None:
        choices = [
            {"Cookie": f"{COOKIE}={new_secret()}"},
            {"Cookie": f"{COOKIE}={secrets.token_urlsafe(20)}"},
            {"Authorization": f"Bearer {new_secret()}"},
        ]
        if self.genuine_token:
            choices += [{"Authorization": f"Bearer {t}"} for t in forged_tokens(self.genuine_token)]
        response = await self.request("GET", "/auth/me", headers=RNG.choice(choices))
        if response is not None and response.status_code == 200:
            self.figures.let_through += 1
            self.figures.failures.append("a forged credential was let through")

    def _take(self, kind: str | None = None) -> Credential | None:
        candidates = [c for c in self._live(kind) if not c.busy]
        if not candidates:
            return None
        credential = RNG.choice(candidates)
        credential.busy = True
        return credential

    async def refresh(self) -> None:
        """Rotate a family; sometimes two nodes race with the same token."""
        credential = self._take("family")
        if credential is None:
            return
        try:
            token = credential.refresh
            form = {"grant_type": "refresh_token", "refresh_token": token}
            racing = RNG.random() < 0.3
            sends = [
                self.request("POST", "/auth/token", data=form) for _ in range(2 if racing else 1)
            ]
            answers = await asyncio.gather(*sends)
            ok = [r.json() for r in answers if r is not None and r.status_code == 200]
            if len(ok) != len(answers):
                credential.uncertain = True  # a racer lost, failed or got no answer
            if len({body["refresh_token"] for body in ok}) > 1:
                self.figures.failures.append("one refresh token rotated twice in a race")
            if ok:
                credential.rotated.append((token, time.monotonic()))
                credential.refresh = ok[0]["refresh_token"]
                credential.secrets.append(ok[0]["access_token"])
        finally:
            credential.busy = False

    async def replay(self) -> None:
        """Present a refresh token the family moved past, after the grace: theft, so
        the family (its access tokens with it) must end."""
        now = time.monotonic()
        candidates = [
            c
            for c in self._live("family")
            if not c.busy and any(at < now - REFRESH_GRACE - 0.5 for _, at in c.rotated)
        ]
        if not candidates:
            return
        credential = RNG.choice(candidates)
        credential.busy = True
        try:
            old = next(token for token, at in credential.rotated if at < now - REFRESH_GRACE - 0.5)
            response = await self.request(
                "POST", "/auth/token", data={"grant_type": "refresh_token", "refresh_token": old}
            )
            if response is not None and response.status_code == 400:
                credential.revoked_at = time.monotonic()
            elif response is not None and response.status_code == 200:
                self.figures.let_through += 1
                self.figures.failures.append("a replayed refresh token was accepted")
            else:
                credential.uncertain = True
        finally:
            credential.busy = False

    async def sign_out_device(self) -> None:
        credential = self._take()
        if credential is None:
            return
        try:
            if credential.kind == "family":
                response = await self.request("POST", "/auth/logout", headers=credential.headers())
            else:
                response = await self._end_by_handle(credential)
            if response is not None and response.status_code == 204:
                credential.revoked_at = time.monotonic()
            elif response is None or response.status_code >= 500:
                credential.uncertain = True
        finally:
            credential.busy = False

    async def _end_by_handle(self, credential: Credential) -> httpx.Response | None:
        node = RNG.randrange(len(self.urls))
        listed = await self.request(
            "GET", "/auth/sessions", node=node, headers=credential.headers()
        )
        if listed is None or listed.status_code != 200:
            return listed
        handle = next((d["id"] for d in listed.json() if d["current"]), None)
        if handle is None:
            return None
        return await self.request(
            "DELETE", f"/auth/sessions/{handle}", node=node, headers=credential.headers()
        )

    async def sign_out_everywhere(self) -> None:
        credential = self._take()
        if credential is None:
            return
        sent = time.monotonic()
        try:
            response = await self.request("POST", "/auth/logout-all", headers=credential.headers())
        finally:
            credential.busy = False
        if response is not None and response.status_code == 204:
            done = time.monotonic()
            for other in self.credentials:
                if other.email == credential.email and other.revoked_at is None:
                    if other.issued < sent:
                        other.revoked_at = done
                    else:
                        other.uncertain = True  # signed in while it ran
        elif response is None or response.status_code >= 500:
            for other in self.credentials:
                if other.email == credential.email:
                    other.uncertain = True

    # the loop

    MIX: tuple[tuple[str, int], ...] = (
        ("sign_up", 6),
        ("sign_in_session", 8),
        ("sign_in_tokens", 8),
        ("sign_in_wrong", 6),
        ("read", 45),
        ("forged", 10),
        ("refresh", 10),
        ("replay", 3),
        ("sign_out_device", 4),
        ("sign_out_everywhere", 1),
    )

    async def worker(self) -> None:
        names = [name for name, _ in self.MIX]
        weights = [weight for _, weight in self.MIX]
        while not self._stop.is_set():
            name = RNG.choices(names, weights)[0]
            await getattr(self, name)()
            await asyncio.sleep(0.005)

    async def run_until(self, done: Awaitable[None]) -> None:
        """Register the canary, then run the workers until ``done`` completes."""
        email = self._email()
        response = await self.request(
            "POST", "/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert response is not None, "no node answered the canary's sign-up"
        assert response.status_code == 201, response.text
        self.canary = email
        workers = [asyncio.create_task(self.worker()) for _ in range(WORKERS)]
        try:
            await done
        finally:
            self._stop.set()
            await asyncio.gather(*workers, return_exceptions=True)

    async def recovered(self, name: str, since: float) -> None:
        """Wait until a fresh sign-in and a read succeed on every node; record the time."""
        canary = self.canary
        pending = list(range(len(self.urls)))
        while pending:
            if time.monotonic() - since > RECOVER_LIMIT:
                self.figures.failures.append(f"not serving {RECOVER_LIMIT} s after {name}")
                break
            node = pending[0]
            response = await self.request(
                "POST",
                "/auth/token",
                node=node,
                data={"grant_type": "password", "username": canary, "password": PASSWORD},
            )
            if response is not None and response.status_code == 200:
                bearer = {"Authorization": f"Bearer {response.json()['access_token']}"}
                read = await self.request("GET", "/auth/me", node=node, headers=bearer)
                if read is not None and read.status_code == 200:
                    pending.pop(0)
                    continue
            await asyncio.sleep(0.1)
        self.figures.recovery[name] = time.monotonic() - since


def _cookie(response: httpx.Response) -> str:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == COOKIE:
            return rest.split(";", 1)[0]
    raise AssertionError("no session cookie")


# --- checks against the stores ----------------------------------------------------------


async def check_stores(traffic: Traffic, database: str, redis_url: str) -> None:
    """Read the stores directly: every account, session and family the ledger holds as
    live must be there (and a family unrevoked)."""
    figures = traffic.figures
    stores = open_stores(database, fast_url=redis_url)
    await stores.start()
    try:
        for email, sure in traffic.users.items():
            if sure:
                figures.checked["users"] += 1
                if await stores.users.get_by_email(email) is None:
                    figures.lost["users"] += 1
        for credential in traffic.credentials:
            if credential.revoked_at is not None or credential.uncertain:
                continue
            if credential.kind == "session":
                figures.checked["sessions"] += 1
                if await stores.sessions.get(secret_digest(credential.secrets[0])) is None:
                    figures.lost["sessions"] += 1
            else:
                figures.checked["families"] += 1
                found = await stores.refresh.find(secret_digest(credential.refresh))
                if found is None or found[0].revoked_at is not None:
                    figures.lost["families"] += 1
    finally:
        await stores.aclose()
    for kind, count in figures.lost.items():
        if count:
            figures.failures.append(f"{count} {kind} lost")


def check_logs(nodes: Sequence[ServerProcess], figures: Figures) -> None:
    """Fail on every traceback a node logged (its last frames and the exception)."""
    for node in nodes:
        lines = (node.stdout + node.stderr).splitlines()
        for n, line in enumerate(lines):
            if not line.startswith("Traceback"):
                continue
            end = n + 1
            while end < len(lines) and (lines[end][:1] in (" ", "|", "+") or not lines[end]):
                end += 1
            shown = [lines[max(0, n - 1)], *lines[max(n, end - 12) : end + 1]]
            figures.failures.append("a node logged a traceback:\n" + "\n".join(shown))


# --- the soak itself --------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One fault: ``inject`` (blocking) takes something away, ``restore`` (blocking)
    brings it back; the time from ``restore`` returning to serving is its recovery."""

    name: str
    inject: Callable[[], None]
    restore: Callable[[], None]


async def run_faults(
    traffic: Traffic, faults: Sequence[Fault], *, seconds: float, down: float
) -> None:
    """Spread the faults over ``seconds``; each keeps its component away ``down`` seconds."""
    gap = seconds / (len(faults) + 1)
    started = time.monotonic()
    for n, fault in enumerate(faults, start=1):
        await asyncio.sleep(max(0.0, started + n * gap - time.monotonic()))
        await asyncio.to_thread(fault.inject)
        await asyncio.sleep(down)
        await asyncio.to_thread(fault.restore)
        await traffic.recovered(fault.name, time.monotonic())
    await asyncio.sleep(max(0.0, started + seconds - time.monotonic()))


@contextlib.contextmanager
def _infrastructure(workdir: Path) -> Iterator[tuple[TempCluster, RedisServer]]:
    postgres = TempCluster()
    redis_dir = workdir / "redis"
    redis_dir.mkdir()
    redis_server = RedisServer(require_redis_server(), redis_dir)
    try:
        postgres.start()
        redis_server.start(*REDIS_AOF)
        yield postgres, redis_server
    finally:
        redis_server.stop()
        postgres.destroy()


def run_soak(seconds: float, workdir: Path, *, down: float = 2.0) -> Figures:
    """The soak: ``seconds`` of traffic with the fault cycle (Redis, PostgreSQL, a node)
    once per three minutes (at least once). Returns the figures; ``failures`` empty
    means it passed."""
    figures = Figures()
    servers = Servers(workdir)
    with _infrastructure(workdir) as (postgres, redis_server):
        database = asyncio.run(create_database("soak", postgres.url))
        env = node_env(database, redis_server.url)
        nodes = start_nodes(servers, env)
        urls = [str(node.base_url) for node in nodes]
        killed: list[ServerProcess] = []

        def kill_node() -> None:
            victim = nodes.pop()
            victim.stop(signal.SIGKILL)
            killed.append(victim)
            urls.pop()

        def restart_node() -> None:
            replacement = servers.spawn("--port", "0", env=env)
            replacement.start()
            nodes.append(replacement)
            urls.append(str(replacement.base_url))

        cycle = [
            Fault("Redis (SIGKILL)", redis_server.kill, lambda: redis_server.start(*REDIS_AOF)),
            Fault(
                "PostgreSQL (immediate stop)",
                lambda: postgres.stop("immediate"),
                postgres.start,
            ),
            Fault("a node (SIGKILL)", kill_node, restart_node),
        ]
        cycles = max(1, int(seconds // 180))
        faults = [
            Fault(
                f"{fault.name} #{n + 1}" if cycles > 1 else fault.name, fault.inject, fault.restore
            )
            for n in range(cycles)
            for fault in cycle
        ]

        async def soak() -> None:
            traffic = Traffic(urls, figures)
            try:
                await traffic.run_until(run_faults(traffic, faults, seconds=seconds, down=down))
                await asyncio.sleep(TOKEN_BOUND)  # let the last sign-outs reach every node
                await check_stores(traffic, database, redis_server.url)
            finally:
                await traffic.aclose()

        try:
            asyncio.run(soak())
        finally:
            servers.stop_all()
            check_logs([*nodes, *killed], figures)
    return figures


RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
MAX_MINUTES = 24 * 60.0
MAX_DOWN = 60.0


def _between(low: float, high: float, unit: str) -> Callable[[str], float]:
    """An argparse type: a number more than ``low`` and at most ``high``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of {unit}") from None
        if not low < value <= high:  # NaN fails too
            raise argparse.ArgumentTypeError(
                f"must be more than {low:g} and at most {high:g} {unit}, not {text}"
            )
        return value

    return parse


def results_of(figures: Figures, *, minutes: float, down: float) -> dict[str, Any]:
    """The figures as JSON-ready data (the issue's list: sent, answers, let through,
    after revocation, lost, recovery), with the command that made them."""
    return {
        "command": f"python -m tests.e2e.soak --minutes {minutes:g} --down {down:g}",
        "minutes": minutes,
        "requests_sent": figures.sent,
        "answers": {
            f"{status or 'no answer'} {code or '-'}": n
            for (status, code), n in sorted(figures.answers.items())
        },
        "let_through": figures.let_through,
        "after_revocation_beyond_bound": figures.after_revocation,
        "lost": dict(figures.lost),
        "checked": dict(figures.checked),
        "recovery_s": {name: round(seconds, 3) for name, seconds in figures.recovery.items()},
        "failures": list(figures.failures),
    }


def write_results(results: dict[str, Any], report: str, directory: Path) -> list[Path]:
    """Write ``soak-faults.json`` and ``soak-faults.md`` in ``directory``, each
    replaced in one step; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for path, text in (
        (directory / "soak-faults.json", json.dumps(results, indent=2) + "\n"),
        (directory / "soak-faults.md", f"```\n$ {results['command']}\n{report}\n```\n"),
    ):
        scratch = path.with_name(path.name + ".tmp")
        scratch.write_text(text)
        scratch.replace(path)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--minutes",
        type=_between(0, MAX_MINUTES, "minutes"),
        default=10.0,
        help="how long (default 10)",
    )
    parser.add_argument(
        "--down",
        type=_between(0, MAX_DOWN, "seconds"),
        default=3.0,
        help="seconds each fault lasts",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write them")
    parser.add_argument("--no-results", dest="results", action="store_const", const=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vr-soak-") as workdir:
        figures = run_soak(args.minutes * 60, Path(workdir), down=args.down)
    report = figures.report(f"soak: {args.minutes:g} min, 3 nodes on PostgreSQL + Redis")
    print(report)
    if args.results is not None:
        results = results_of(figures, minutes=args.minutes, down=args.down)
        for path in write_results(results, report, args.results):
            print(f"written: {path}")
    return 1 if figures.failures else 0


if __name__ == "__main__":
    sys.exit(main())
