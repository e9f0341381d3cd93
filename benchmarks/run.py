"""Measure what the per-request check costs: wrk against the same endpoint, open and protected.

For each case (a store, and how a client obtains a credential for it) this starts
``benchmarks/app.py`` under uvicorn on 127.0.0.1, signs in over HTTP, checks that the
protected endpoints answer 200 with the credential and 401 without (or with a forged
one), then runs wrk against every endpoint in alternating order for a number of
rounds. Two integrations are measured against ``/bench/open``:

* ``/bench/guarded``: :class:`velvetrope.AuthMiddleware`, the pure-ASGI guard (the
  documented hot-path integration). **Its ratio to open is the verdict**: the target
  is 0.90 or more (the median of the per-round ratios), 0.80 for sessions in Redis or
  PostgreSQL (behind the per-node near-cache);
* ``/bench/protected``: ``Depends(vr.principal)``, reported alongside.

With ``--floor`` a fifth endpoint, behind a dependency that does nothing, shows how
much of the Depends path's cost is FastAPI's price for any dependency. Results go to
``benchmarks/results/``; ``--smoke`` is a short correctness run that writes nothing.

Usage::

    .venv/bin/python benchmarks/run.py [--duration 10] [--connections 32] [--threads 2]
                                       [--rounds 3] [--stores memory,sqlite,redis,postgres]
                                       [--floor] [--smoke]

The ``dpop`` case sends a DPoP-bound access token (RFC 9449): ``Authorization: DPoP``
and a new proof on every request (signed ahead of each wrk run, a file per endpoint,
walked by ``rotating_bearer.lua``), so the server verifies a signature, spends the
proof's ``jti`` in the store (``stores.one_time``) and checks ``ath`` and the key on
every request. Run it next to ``jwt-warm`` (plain bearer, same token store) to read
both ratios to open from one run: ``--stores jwt-warm,dpop``.

Adding a case is one entry in :data:`CASES`: a name, the stores (a context manager
that provides the server's store variables and removes what it created), a function
that signs in and returns the credential to send, and any extra environment. The
``redis`` and ``postgres`` cases use the servers at ``VELVETROPE_BENCH_REDIS_URL``
(default ``redis://127.0.0.1:6379/0``) and ``VELVETROPE_BENCH_POSTGRES_URL`` (an
account that may create databases; default
``postgresql://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import functools
import hashlib
import http.client
import importlib.metadata
import importlib.resources
import importlib.util
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, Final

from velvetrope.lab import wrk as lab_wrk
from velvetrope.lab.benchapp import (
    BODY,
    BOTH_PATH,
    FLOOR_PATH,
    GUARDED_PATH,
    OPEN_PATH,
    PROTECTED_PATH,
)
from velvetrope.lab.machine import machine_busy
from velvetrope.lab.servers import node_command
from velvetrope.lab.services import stop_process

WrkResult = lab_wrk.WrkResult
LAB_DATA: Final = importlib.resources.files("velvetrope.lab") / "data"

HERE: Final = Path(__file__).resolve().parent
RESULTS_DIR: Final = HERE / "results"

HOST: Final = "127.0.0.1"  # the only address this script ever sends traffic to
TARGET_RATIO: Final = 0.90
NEAR_CACHE_TARGET: Final = 0.80  # issue 4: sessions over the network, behind the near-cache
NOISE: Final = 0.05  # rounds spread, or req/s and CPU ratios differ, by more: "noisy"
EMAIL: Final = "bench@example.com"
PASSWORD: Final = "benchmark passphrase for velvetrope"
SESSION_COOKIE: Final = "__Host-velvetrope-session"

STARTUP_TIMEOUT: Final = 60.0  # seconds for uvicorn to answer /health
REQUEST_TIMEOUT: Final = 30.0  # seconds for one setup request (login hashes a password)
SHUTDOWN_TIMEOUT: Final = 10.0  # seconds between SIGTERM and SIGKILL
WRK_GRACE: Final = 60.0  # seconds wrk may run past its --duration before it is killed

ENDPOINTS: Final = {
    "open": OPEN_PATH,
    "floor": FLOOR_PATH,
    "protected": PROTECTED_PATH,
    "guarded": GUARDED_PATH,
    "both": BOTH_PATH,
}
CHECKED: Final = ("protected", "guarded", "both")  # endpoints that require the credential
RAW_VERIFY_SECONDS: Final = 0.3  # per round: the raw signature check, timed in this process
TARGET_ENDPOINT: Final = "guarded"  # the verdict: AuthMiddleware, the hot-path integration

ROTATION_SCRIPT: Final = Path(LAB_DATA.joinpath("rotating_bearer.lua"))  # wrk: next token each time
COLD_TOKENS: Final = 16_000  # over the verified-token cache (10,000): every use is a miss
MAX_TOKENS_FILE_BYTES: Final = 64 * 1024 * 1024  # each wrk thread loads the whole file
EXPIRY_MARGIN: Final = 30.0  # seconds a token must outlive a wrk run by
QUIET_PCT: Final = 15.0  # --quiet-wait: "idle" is under this percent of one CPU busy
SMOKE_CASES: Final = (
    "memory",
    "jwt-warm",
    "jwt-cookie",
    "dpop",
)  # --smoke (gateway: benchmarks/gateway.py)
PROOFS_PER_SECOND: Final = 8_000  # DPoP proofs signed per second of a wrk run (above open's rate)


class BenchError(Exception):
    """A case could not be measured (server did not start, login failed, wrk failed...)."""


# --- talking to the server ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP response, fully read."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass(frozen=True, slots=True)
class Server:
    """A running benchmark server on ``HOST``."""

    port: int
    pid: int
    scratch: Path  # the case's scratch directory (deleted afterwards)
    database_url: str  # the server's VELVETROPE_DATABASE_URL

    @property
    def origin(self) -> str:
        """The server's origin, as its settings derive it from host and port."""
        return f"http://{HOST}:{self.port}"

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the server process has used so far (Linux; else None)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return f"{self.origin}{path}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: object | None = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send one request on a fresh connection and read the whole response.

        Raises:
            OSError: The server is not reachable.
        """
        sent = dict(headers or {})
        payload = None
        if json_body is not None:
            payload = json.dumps(json_body).encode()
            sent["Content-Type"] = "application/json"
        elif form is not None:
            payload = urllib.parse.urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
        try:
            conn.request(method, path, body=payload, headers=sent)
            response = conn.getresponse()
            return Reply(response.status, response.getheaders(), response.read())
        finally:
            conn.close()


@dataclass(slots=True)
class Rotation:
    """A file of bearer tokens that wrk sends in turn, and where the next run starts.

    ``rotating_bearer.lua`` reports the first position its threads did not reach;
    the next run starts there, so the whole case walks the file in order.
    """

    path: Path  # absolute; one token a line
    count: int
    cursor: int = 1  # token 0 is the one verify() sends
    header: str = "Authorization"  # the header each line goes into
    prefix: str = "Bearer "  # what precedes it there


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Proofs:
    """DPoP proofs for one access token and key: one per request, never reused.

    Signed here with ``cryptography`` directly (about 70 us each, three times faster than
    the general client helper), so a run's proofs take a second or two to make.
    """

    key: Any  # cryptography EllipticCurvePrivateKey
    token: str
    origin: str
    scratch: Path

    @functools.cached_property
    def _header(self) -> str:
        numbers = self.key.public_key().public_numbers()
        jwk = {
            "crv": "P-256",
            "kty": "EC",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }
        header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": jwk}
        return _b64(json.dumps(header, separators=(",", ":")).encode())

    def sign(self, htm: str, path: str, *, ath: str | None) -> str:
        """A proof for ``htm`` on ``path`` of the server's origin (``ath``: the token's hash)."""
        from cryptography.hazmat.primitives import hashes  # noqa: PLC0415 - DPoP case only
        from cryptography.hazmat.primitives.asymmetric import ec, utils  # noqa: PLC0415

        claims = {
            "htm": htm,
            "htu": self.origin + path,
            "iat": int(time.time()),
            "jti": _b64(secrets.token_bytes(16)),
        }
        if ath is not None:
            claims["ath"] = ath
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{self._header}.{payload}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = utils.decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    @property
    def ath(self) -> str:
        """The token's hash, as proofs next to it carry it."""
        return _b64(hashlib.sha256(self.token.encode()).digest())

    def headers(self, path: str) -> dict[str, str]:
        """A request's headers: the token and a fresh proof for ``GET path``."""
        return {"Authorization": f"DPoP {self.token}", "DPoP": self.sign("GET", path, ath=self.ath)}

    def raw_verify_us(self) -> VerifyCosts:
        """Microseconds one proof's ES256 signature check takes alone (cryptography); the
        whole proof check is not timed in process (it needs the server's replay store)."""
        from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 - DPoP only
        from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec, utils  # noqa: PLC0415

        proof = self.sign("GET", GUARDED_PATH, ath=self.ath)
        head, payload, signature = proof.split(".")
        raw = base64.urlsafe_b64decode(signature + "==")
        der = utils.encode_dss_signature(
            int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        )
        public, message = self.key.public_key(), f"{head}.{payload}".encode("ascii")

        def check() -> bool:
            try:
                public.verify(der, message, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                return False
            return True

        return _time_us(check), None

    def rotation(self, endpoint: str, path: str, count: int) -> Rotation:
        """A file of ``count`` fresh proofs for ``GET path``, for one wrk run."""
        ath = self.ath
        text = "\n".join(self.sign("GET", path, ath=ath) for _ in range(count)) + "\n"
        if len(text) > MAX_TOKENS_FILE_BYTES:
            raise BenchError(f"{count} proofs take {len(text):,} bytes, over the limit")
        file = (self.scratch / f"proofs-{endpoint}.txt").resolve()
        file.write_text(text)
        return Rotation(file, count, cursor=0, header="DPoP", prefix="")


@dataclass(frozen=True, slots=True)
class Credential:
    """What the client sends to prove who it is.

    Attributes:
        headers: Sent on every request (wrk ``--header``).
        sample: The headers of one representative request, for :func:`verify`.
        rotation: When set, each request also carries ``Authorization: Bearer`` with
            the next token of a file (wrk runs ``rotating_bearer.lua``).
        expires_at: When the credential stops working (epoch seconds), if it does
            within a run; a wrk run that would outlast it is refused.
        proofs: DPoP proofs to sign for each run.
        raw_verify: Times the credential's signature check alone (the cryptography,
            nothing else) in this process: microseconds per check. The per-request
            check is compared with it (the JWT and DPoP cases).
    """

    headers: dict[str, str]
    sample: dict[str, str]
    rotation: Rotation | None = None
    expires_at: float | None = None
    proofs: Proofs | None = None
    raw_verify: Callable[[], VerifyCosts] | None = None  # see raw_verify_us

    def sample_for(self, path: str) -> dict[str, str]:
        """The headers of one request to ``path`` (a DPoP request needs its own proof)."""
        return self.sample if self.proofs is None else self.proofs.headers(path)


def register(server: Server) -> None:
    """Create the benchmark user (once per server)."""
    credentials = {"email": EMAIL, "password": PASSWORD}
    reply = server.request("POST", "/auth/register", json_body=credentials)
    if reply.status not in {201, 409}:
        raise BenchError(f"register answered {reply.status}: {reply.body[:200]!r}")


def session_cookie(server: Server) -> Credential:
    """Register (if needed) and sign in; send the session cookie as a ``Cookie`` header.

    The cookie is ``Secure``, so a cookie jar would not send it over plain http; wrk
    and this script send it as an explicit header instead.
    """
    register(server)
    reply = server.request("POST", "/auth/login", json_body={"email": EMAIL, "password": PASSWORD})
    if reply.status != 200:
        raise BenchError(f"login answered {reply.status}: {reply.body[:200]!r}")
    for header in reply.header_all("set-cookie"):
        name, _, value = header.partition(";")[0].strip().partition("=")
        if name == SESSION_COOKIE and value:
            headers = {"Cookie": f"{SESSION_COOKIE}={value}"}
            return Credential(headers, headers)
    raise BenchError(f"login set no {SESSION_COOKIE} cookie")


def access_token(server: Server) -> str:
    """Register (if needed) and get an access token: ``POST /auth/token``, password grant."""
    register(server)
    form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
    reply = server.request("POST", "/auth/token", form=form)
    if reply.status != 200:
        raise BenchError(f"/auth/token answered {reply.status}: {reply.body[:200]!r}")
    token = json.loads(reply.body).get("access_token")
    if not isinstance(token, str) or not token:
        raise BenchError(f"/auth/token returned no access_token: {reply.body[:200]!r}")
    return token


def jwt_part(token: str, index: int) -> dict[str, Any]:
    """Decode a JWT's header (0) or claims (1) without checking anything (we minted it)."""
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def bearer_token(server: Server) -> Credential:
    """One access token from the token endpoint, sent on every request (a warm cache)."""
    token = access_token(server)
    headers = {"Authorization": f"Bearer {token}"}
    return Credential(
        headers,
        headers,
        expires_at=float(jwt_part(token, 1)["exp"]),
        raw_verify=functools.partial(raw_verify_us, server, token),
    )


ACCESS_COOKIE: Final = "__Host-velvetrope-access"


def access_cookie(server: Server) -> Credential:
    """JWT in a cookie (``VELVETROPE_BROWSER_CREDENTIALS=jwt-cookie``): sign in at
    ``POST /auth/login`` and send the access-token cookie it sets on every request."""
    register(server)
    reply = server.request("POST", "/auth/login", json_body={"email": EMAIL, "password": PASSWORD})
    if reply.status != 200:
        raise BenchError(f"login answered {reply.status}: {reply.body[:200]!r}")
    for header in reply.header_all("set-cookie"):
        name, _, value = header.partition(";")[0].strip().partition("=")
        if name == ACCESS_COOKIE and value:
            headers = {"Cookie": f"{ACCESS_COOKIE}={value}"}
            return Credential(
                headers,
                headers,
                expires_at=float(jwt_part(value, 1)["exp"]),
                raw_verify=functools.partial(raw_verify_us, server, value),
            )
    raise BenchError(f"login set no {ACCESS_COOKIE} cookie (is jwt-cookie mode on?)")


GATEWAY_ELSEWHERE: Final = (
    "measured by benchmarks/gateway.py, not here: an internal JWT is checked by the "
    "services behind the edge (velvetrope.integrations), never by this app's endpoints "
    "(they refuse it by design, HYB-05); that script puts nginx, the edge check and a "
    "service together and reports the gateway's added latency, its req/s ratio to "
    "nginx -> service direct, and mints per session"
)


def gateway_internal_token(server: Server) -> Credential:
    """Never called: the gateway case is routed to ``benchmarks/gateway.py``.

    Raises:
        BenchError: Always, with the reason (:data:`GATEWAY_ELSEWHERE`).
    """
    raise BenchError(GATEWAY_ELSEWHERE)


def gateway_missing() -> str | None:
    """Why the gateway case does not run in this script (see :data:`GATEWAY_ELSEWHERE`)."""
    if importlib.util.find_spec("velvetrope.core.gateway") is None:
        return "velvetrope.core.gateway is not importable (the gateway has not landed)"
    return GATEWAY_ELSEWHERE


@contextlib.contextmanager
def server_service(server: Server, model: str) -> Iterator[Any]:
    """The server's own service, opened in this process on its database (where its
    signing keys are), with the issuer, audience, algorithm and lifetime of ``model``."""
    from velvetrope import Settings  # noqa: PLC0415 - only the JWT cases need it
    from velvetrope.bootstrap import build_service  # noqa: PLC0415

    header, claims = jwt_part(model, 0), jwt_part(model, 1)
    with without_velvetrope_env():
        settings = Settings(
            _env_file=None,
            database_url=server.database_url,
            public_origin=server.origin,
            token_issuer=claims["iss"],
            token_audience=claims["aud"],
            token_algorithm=header["alg"],
            access_token_ttl=timedelta(seconds=int(claims["exp"]) - int(claims["iat"])),
        )
    service = build_service(settings)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(service.start())  # loads the server's keys
        yield service
    finally:
        loop.run_until_complete(service.aclose())
        loop.close()


VerifyCosts = tuple[float, float | None]
"""(one signature check alone, the whole cold check in process), microseconds each."""

COLD_SAMPLE: Final = 200  # fresh tokens signed for the in-process cold check


def raw_verify_us(server: Server, token: str) -> VerifyCosts:
    """One signature check of ``token`` alone (joserfc's algorithm object over the signing
    input, ``cryptography`` underneath, the server's key), and velvetrope's whole cold
    check of a fresh token (``TokenService.verify``: parse, header, key, signature,
    claims, revocations) in this process, timed in alternating batches so that both see
    the same machine; microseconds each.

    Raises:
        BenchError: The key is not there, or the signature does not verify.
    """
    from velvetrope.core.tokens import codec  # noqa: PLC0415 - only the JWT cases need it

    head, payload, signature = token.split(".")
    kid, alg = jwt_part(token, 0)["kid"], jwt_part(token, 0)["alg"]
    claims = jwt_part(token, 1)
    with server_service(server, token) as service:
        found = service.tokens.access.keys.lookup(kid)
        if found is None:
            raise BenchError(f"the server has no key {kid!r}")
        key = found[0]
        algorithm = codec._ALGORITHMS[alg]  # the same object the codec verifies with
        message = f"{head}.{payload}".encode("ascii")
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        if not algorithm.verify(message, raw, key):
            raise BenchError("the raw signature check failed")
        access = service.tokens.access
        fresh = [
            access.issue(user_id=claims["sub"], family_id=claims["sid"]).token
            for _ in range(COLD_SAMPLE)
        ]
        loop = asyncio.new_event_loop()

        async def cold_batch() -> float:
            started = time.perf_counter()
            for one in fresh:
                await service.tokens.verify(one)
            elapsed = time.perf_counter() - started
            for one in fresh:
                access.forget(one)  # the next batch misses again
            return elapsed / len(fresh) * 1e6

        def raw_batch() -> float:
            started = time.perf_counter()
            for _ in range(len(fresh)):
                algorithm.verify(message, raw, key)
            return (time.perf_counter() - started) / len(fresh) * 1e6

        raws: list[float] = []
        colds: list[float] = []
        deadline = time.perf_counter() + RAW_VERIFY_SECONDS
        try:
            while time.perf_counter() < deadline or len(raws) < 3:
                raws.append(raw_batch())
                colds.append(loop.run_until_complete(cold_batch()))
        finally:
            loop.close()
    return statistics.median(raws), statistics.median(colds)


def _time_us(check: Callable[[], object]) -> float:
    """Median over batches of ``check()`` (which must return true), in microseconds."""
    if not check():
        raise BenchError("the raw signature check failed")
    batches: list[float] = []
    deadline = time.perf_counter() + RAW_VERIFY_SECONDS
    while time.perf_counter() < deadline or len(batches) < 3:
        started = time.perf_counter()
        for _ in range(20):
            check()
        batches.append((time.perf_counter() - started) / 20 * 1e6)
    return statistics.median(batches)


def dpop_token(server: Server) -> Credential:
    """A DPoP-bound access token from the token endpoint; a new proof on every request."""
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415 - DPoP case only

    register(server)
    proofs = Proofs(ec.generate_private_key(ec.SECP256R1()), "", server.origin, server.scratch)
    form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
    proof = proofs.sign("POST", "/auth/token", ath=None)
    reply = server.request("POST", "/auth/token", form=form, headers={"DPoP": proof})
    body = json.loads(reply.body) if reply.status == 200 else {}
    if body.get("token_type") != "DPoP" or not isinstance(body.get("access_token"), str):
        raise BenchError(f"/auth/token gave no DPoP token ({reply.status}): {reply.body[:200]!r}")
    bound = dataclasses.replace(proofs, token=body["access_token"])
    return Credential(
        {"Authorization": f"DPoP {bound.token}"},
        bound.headers(OPEN_PATH),
        expires_at=float(jwt_part(bound.token, 1)["exp"]),
        proofs=bound,
        raw_verify=bound.raw_verify_us,
    )


@contextlib.contextmanager
def without_velvetrope_env() -> Iterator[None]:
    """Hide our shell's ``VELVETROPE_*`` while building settings (the server never sees them)."""
    hidden = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("VELVETROPE_")}
    try:
        yield
    finally:
        os.environ.update(hidden)


def mint_tokens(server: Server, model: str, count: int) -> list[str]:
    """Sign ``count`` distinct access tokens like ``model``, with the server's own key.

    Opens the server's database in this process (the signing key is stored there),
    with the issuer, audience, algorithm and lifetime read from ``model``, which the
    server issued over HTTP: same user (``sub``) and refresh family (``sid``), a new
    ``jti`` each.
    """
    claims = jwt_part(model, 1)
    with server_service(server, model) as service:
        return [
            service.tokens.access.issue(user_id=claims["sub"], family_id=claims["sid"]).token
            for _ in range(count)
        ]


def rotating_bearer_tokens(server: Server) -> Credential:
    """A new access token on every request (every one a miss in the server's token cache).

    One token comes from the token endpoint, to learn the user and the refresh
    family; :data:`COLD_TOKENS` more are signed here with the server's key and written
    to a file that ``rotating_bearer.lua`` walks through.
    """
    from velvetrope import AuthError  # noqa: PLC0415 - only the JWT case needs it

    model = access_token(server)
    started = time.monotonic()
    try:
        tokens = mint_tokens(server, model, COLD_TOKENS)
    except (AuthError, KeyError, ValueError) as exc:  # ValueError: pydantic's too
        raise BenchError(f"could not sign tokens with the server's key: {exc!r}") from exc
    if len(set(tokens)) != len(tokens):
        raise BenchError("minted tokens are not distinct")
    text = "\n".join(tokens) + "\n"
    if len(text) > MAX_TOKENS_FILE_BYTES:
        raise BenchError(f"{len(tokens)} tokens take {len(text):,} bytes, over the limit")
    path = (server.scratch / "tokens.txt").resolve()
    path.write_text(text)
    say(f"minted {len(tokens):,} access tokens in {time.monotonic() - started:.1f} s ({path})")
    return Credential(
        {},
        {"Authorization": f"Bearer {tokens[0]}"},
        rotation=Rotation(path, len(tokens)),
        expires_at=float(min(jwt_part(t, 1)["exp"] for t in (tokens[0], tokens[-1]))),
        raw_verify=functools.partial(raw_verify_us, server, tokens[0]),
    )


# --- cases ----------------------------------------------------------------------------------

SignIn = Callable[[Server], Credential]
"""Obtain a credential from a running server: what the client sends on each request."""

StoreSetup = Callable[[Path], AbstractContextManager[dict[str, str]]]
"""Scratch directory -> a context that yields the server's store variables (at least
``VELVETROPE_DATABASE_URL``) and, on the way out, removes what it created."""

DATABASE_URL: Final = "VELVETROPE_DATABASE_URL"
BENCH_REDIS_URL: Final = os.environ.get("VELVETROPE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
BENCH_POSTGRES_URL: Final = os.environ.get(
    "VELVETROPE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@dataclass(frozen=True, slots=True)
class Case:
    """One row of the result table.

    Attributes:
        name: Short identifier, used by ``--stores``.
        description: What the row measures, for the report.
        stores: Provides (and afterwards removes) the server's stores.
        credential: How a client signs in and what it sends on each request.
        env: More ``VELVETROPE_*`` (or other) variables for the server.
        by_default: Whether a run without ``--stores`` includes the case.
        target: The guarded ratio the case must reach.
        missing: Says why the case cannot run in this velvetrope (a feature that has
            not landed), or ``None``; its row then reads *not available*.
    """

    name: str
    description: str
    stores: StoreSetup
    credential: SignIn = session_cookie
    env: Mapping[str, str] = field(default_factory=dict)
    by_default: bool = True
    target: float = TARGET_RATIO
    missing: Callable[[], str | None] | None = None


def sqlite_url(scratch: Path) -> str:
    """A SQLite file in the scratch directory."""
    return f"sqlite:///{scratch / 'velvetrope.db'}"


@contextlib.contextmanager
def memory_stores(_scratch: Path) -> Iterator[dict[str, str]]:
    """Everything in the server process: nothing to create or remove."""
    yield {DATABASE_URL: "memory://"}


@contextlib.contextmanager
def sqlite_stores(scratch: Path) -> Iterator[dict[str, str]]:
    """A SQLite file in the scratch directory (which is deleted afterwards)."""
    yield {DATABASE_URL: sqlite_url(scratch)}


def _server_of(url: str) -> str:
    """Host, port and path of a URL: never its user or password."""
    parts = urllib.parse.urlsplit(url)
    return parts.netloc.rpartition("@")[2] + parts.path


@contextlib.contextmanager
def redis_stores(scratch: Path) -> Iterator[dict[str, str]]:
    """Sessions, token families, the revocation feed and login counters in Redis under a
    key prefix of this run's own (its keys are deleted afterwards); users and signing
    keys in a SQLite file (never read by the per-request check)."""
    import redis  # noqa: PLC0415 - only the Redis case needs it

    prefix = f"velvetrope-bench:{secrets.token_hex(8)}:"
    client = redis.Redis.from_url(BENCH_REDIS_URL, socket_connect_timeout=5, socket_timeout=30)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        client.close()
        raise BenchError(
            f"Redis at {_server_of(BENCH_REDIS_URL)} does not answer ({exc}); start it or "
            "set VELVETROPE_BENCH_REDIS_URL"
        ) from exc
    try:
        yield {
            DATABASE_URL: sqlite_url(scratch),
            "VELVETROPE_REDIS_URL": BENCH_REDIS_URL,
            "VELVETROPE_REDIS_PREFIX": prefix,
        }
    finally:
        try:
            keys = list(client.scan_iter(match=prefix + "*", count=1000))  # no glob characters
            for start in range(0, len(keys), 500):
                client.unlink(*keys[start : start + 500])
        except (redis.RedisError, OSError) as exc:
            say(f"warning: could not delete the Redis keys under {prefix!r}: {exc}")
        finally:
            client.close()


async def _postgres_admin(statement: str) -> None:
    import asyncpg  # noqa: PLC0415 - only the PostgreSQL case needs it

    conn = await asyncpg.connect(BENCH_POSTGRES_URL, timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def postgres_stores(_scratch: Path) -> Iterator[dict[str, str]]:
    """Everything in a PostgreSQL database of this run's own: created here, dropped
    afterwards (with any connection still open to it)."""
    import asyncpg  # noqa: PLC0415 - only the PostgreSQL case needs it

    failures = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
    name = f"vr_bench_{int(time.time())}_{secrets.token_hex(4)}"
    try:
        asyncio.run(_postgres_admin(f"CREATE DATABASE {name}"))
    except failures as exc:
        raise BenchError(
            f"cannot create a database on {_server_of(BENCH_POSTGRES_URL)} ({exc}); start "
            "PostgreSQL or set VELVETROPE_BENCH_POSTGRES_URL"
        ) from exc
    try:
        parts = urllib.parse.urlsplit(BENCH_POSTGRES_URL)
        yield {DATABASE_URL: urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))}
    finally:
        try:
            asyncio.run(_postgres_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        except failures as exc:
            say(f"warning: could not drop the benchmark database {name}: {exc}")


# The longest lifetime velvetrope allows, so --quiet-wait pauses cannot outlast the
# tokens. The lifetime changes nothing a request costs.
JWT_ENV: Final = {"VELVETROPE_ACCESS_TOKEN_TTL": "PT1H"}
NO_SESSION_CACHE: Final = {"VELVETROPE_SESSION_CACHE_TTL": "0"}
# Proofs are signed before each run; the window covers a run of up to ten minutes.
DPOP_ENV: Final = {**JWT_ENV, "VELVETROPE_DPOP_PROOF_WINDOW": "600"}

CASES: Final[dict[str, Case]] = {
    case.name: case
    for case in (
        Case("memory", "session cookie, in-process store", memory_stores),
        Case("sqlite", "session cookie, SQLite file (WAL, synchronous=NORMAL)", sqlite_stores),
        Case(
            "redis",
            "session cookie, sessions in Redis behind the per-node near-cache (users and "
            "keys in a SQLite file)",
            redis_stores,
            target=NEAR_CACHE_TARGET,
        ),
        Case(
            "postgres",
            "session cookie, everything in PostgreSQL (a fresh database), sessions behind "
            "the per-node near-cache",
            postgres_stores,
            target=NEAR_CACHE_TARGET,
        ),
        Case(
            "redis-nocache",
            "the redis case with the near-cache off (VELVETROPE_SESSION_CACHE_TTL=0): a "
            "Redis round trip per request",
            redis_stores,
            env=NO_SESSION_CACHE,
            by_default=False,
        ),
        Case(
            "postgres-nocache",
            "the postgres case with the near-cache off (VELVETROPE_SESSION_CACHE_TTL=0): a "
            "query per request",
            postgres_stores,
            env=NO_SESSION_CACHE,
            by_default=False,
        ),
        Case(
            "jwt-warm",
            "bearer access token (EdDSA JWT) from POST /auth/token, the same one on every "
            "request (verified-token cache hit); SQLite store",
            sqlite_stores,
            credential=bearer_token,
            env=JWT_ENV,
        ),
        Case(
            "dpop",
            "DPoP-bound access token (RFC 9449): Authorization: DPoP and a new ES256 proof "
            "on every request (signature, htm/htu, iat, ath, the key, and the proof's jti "
            "spent in the store's replay cache); SQLite store",
            sqlite_stores,
            credential=dpop_token,
            env=DPOP_ENV,
        ),
        Case(
            "jwt-cold",
            f"bearer access token, a different one on every request ({COLD_TOKENS:,} "
            "tokens cycled, cache of 10,000: every request verifies a signature); "
            "SQLite store",
            sqlite_stores,
            credential=rotating_bearer_tokens,
            env=JWT_ENV,
        ),
        *(
            case
            for alg in ("ES256", "RS256", "HS256")
            for case in (
                Case(
                    f"jwt-warm-{alg.lower()}",
                    f"jwt-warm with {alg} keys (VELVETROPE_TOKEN_ALGORITHM={alg})",
                    sqlite_stores,
                    credential=bearer_token,
                    env={**JWT_ENV, "VELVETROPE_TOKEN_ALGORITHM": alg},
                ),
                Case(
                    f"jwt-cold-{alg.lower()}",
                    f"jwt-cold with {alg} keys: a signature check per request",
                    sqlite_stores,
                    credential=rotating_bearer_tokens,
                    env={**JWT_ENV, "VELVETROPE_TOKEN_ALGORITHM": alg},
                ),
            )
        ),
        Case(
            "jwt-cookie",
            "JWT in a cookie (VELVETROPE_BROWSER_CREDENTIALS=jwt-cookie): the access-token "
            "cookie from POST /auth/login on every request (warm cache); SQLite store",
            sqlite_stores,
            credential=access_cookie,
            env={**JWT_ENV, "VELVETROPE_BROWSER_CREDENTIALS": "jwt-cookie"},
        ),
        Case(
            "dpop-process",
            "the dpop case with VELVETROPE_DPOP_REPLAY_SCOPE=process: one server process "
            "over the SQLite file, proof ids spent in its in-process replay cache only",
            sqlite_stores,
            credential=dpop_token,
            env={**DPOP_ENV, "VELVETROPE_DPOP_REPLAY_SCOPE": "process"},
        ),
        Case(
            "gateway",
            "the hybrid gateway's internal JWT, as a service behind the gateway checks it",
            sqlite_stores,
            credential=gateway_internal_token,
            env=JWT_ENV,
            missing=gateway_missing,
        ),
    )
}

DEFAULT_CASES: Final = tuple(name for name, case in CASES.items() if case.by_default)


# --- the server process ---------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port on ``HOST`` that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(cpus: Sequence[int]) -> list[str]:
    """The ``taskset`` prefix that runs a command on ``cpus`` (nothing when not pinning)."""
    return ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []


def server_command(port: int, cpus: Sequence[int]) -> list[str]:
    """Uvicorn as ``velvetrope serve`` configures it: one worker, no access log (the lab's
    node command, :func:`velvetrope.lab.servers.node_command`)."""
    return [*pinned(cpus), *node_command(port)]


def server_env(case: Case, stores: Mapping[str, str], port: int) -> dict[str, str]:
    """The server's environment: ours without any ``VELVETROPE_*``, plus the case's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VELVETROPE_")}
    env.update(stores)
    env.update(
        VELVETROPE_HOST=HOST,
        VELVETROPE_PORT=str(port),
        VELVETROPE_LOG_LEVEL="warning",
    )
    env.update(case.env)
    return env


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_until_healthy(server: Server, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll ``/health`` until it answers 200; fail if the process exits or time runs out."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with status {proc.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError):
            if server.request("GET", "/health").status == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"server did not answer /health within {STARTUP_TIMEOUT:.0f} s:\n{tail(log)}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server: SIGTERM (uvicorn shuts down gracefully), then SIGKILL."""
    stop_process(proc, timeout=SHUTDOWN_TIMEOUT)


@contextlib.contextmanager
def running_server(case: Case, scratch: Path, cpus: Sequence[int]) -> Iterator[Server]:
    """Set up the case's stores and start the benchmark app on them; always stop it,
    then remove the stores, on the way out."""
    port = free_port()
    log = scratch / "server.log"
    with case.stores(scratch) as stores:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                server_command(port, cpus),
                cwd=scratch,  # no stray .env file is read
                env=server_env(case, stores, port),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            # taskset execs: the pid is uvicorn's
            server = Server(port, proc.pid, scratch, stores[DATABASE_URL])
            wait_until_healthy(server, proc, log)
            yield server
        finally:
            stop(proc)


def session_cache(server: Server) -> dict[str, Any] | None:
    """The server's session near-cache state from ``/ready``, or ``None`` if it has none.

    Raises:
        BenchError: ``/ready`` does not answer 200.
    """
    reply = server.request("GET", "/ready")
    if reply.status != 200:
        raise BenchError(f"/ready answered {reply.status}: {reply.body[:200]!r}")
    state: dict[str, Any] | None = json.loads(reply.body).get("session_cache")
    return state


def forged(headers: Mapping[str, str]) -> dict[str, str]:
    """The same headers with the last characters of each value changed: a bad credential."""
    return {k: v[:-4] + ("BBBB" if v.endswith("AAAA") else "AAAA") for k, v in headers.items()}


def verify(server: Server, credential: Credential) -> None:
    """Every endpoint answers the same body; the checked ones only with the credential."""
    opened = server.request("GET", OPEN_PATH, headers=credential.sample_for(OPEN_PATH))
    if opened.status != 200 or json.loads(opened.body) != BODY:
        raise BenchError(f"{OPEN_PATH} answered {opened.status}: {opened.body[:200]!r}")
    for endpoint, path in ENDPOINTS.items():
        reply = server.request("GET", path, headers=credential.sample_for(path))
        if reply.status != 200 or reply.body != opened.body:
            raise BenchError(
                f"{endpoint} ({path}) with the credential answered {reply.status}: "
                f"{reply.body[:200]!r}"
            )
    # Open and floor must stay open (the guard covers one path), the checked ones not.
    refusals: dict[str, Reply] = {}
    for name, forge in (("no", lambda _: {}), ("a forged", forged)):
        for endpoint, path in ENDPOINTS.items():
            reply = server.request("GET", path, headers=forge(credential.sample_for(path)))
            expected = 401 if endpoint in CHECKED else 200
            if reply.status != expected:
                raise BenchError(
                    f"{endpoint} ({path}) with {name} credential answered {reply.status}, "
                    f"not {expected}: {reply.body[:200]!r}"
                )
            if endpoint in CHECKED:
                refusals[endpoint] = reply
        # The guard promises the app's own 401: same body and challenge.
        ours, theirs = refusals["guarded"], refusals["protected"]
        if ours.body != theirs.body or ours.header_all("www-authenticate") != theirs.header_all(
            "www-authenticate"
        ):
            say(
                f"warning: with {name} credential the guard's 401 differs from Depends': "
                f"{ours.body[:120]!r} {ours.header_all('www-authenticate')} vs "
                f"{theirs.body[:120]!r} {theirs.header_all('www-authenticate')}"
            )


# --- wrk ------------------------------------------------------------------------------------


def parse_wrk(endpoint: str, text: str) -> WrkResult:
    """Parse the report ``wrk --latency`` prints (:func:`velvetrope.lab.wrk.parse_wrk`)."""
    try:
        return lab_wrk.parse_wrk(endpoint, text)
    except lab_wrk.WrkOutputError as exc:
        raise BenchError(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class Load:
    """How hard wrk pushes, and where it runs."""

    duration: int
    connections: int
    threads: int
    cpus: tuple[int, ...] = ()
    quiet_wait: int = 0  # seconds to wait, before each measured run, for a quiet machine


def wait_for_quiet(budget: int) -> float | None:
    """Wait up to ``budget`` seconds for the machine to be idle; return the last busy share.

    Idle: under :data:`QUIET_PCT` percent of one CPU busy over a 2-second sample (the
    server is idle between runs, so what is left is other processes). Returns the
    busy share seen last (``None`` when ``/proc/stat`` is unreadable or no budget).
    """
    deadline = time.monotonic() + budget
    busy_pct = None
    while budget and time.monotonic() < deadline:
        before = machine_busy()
        time.sleep(2.0)
        after = machine_busy()
        if before is None or after is None:
            return None
        busy_pct = 100 * (after - before) / 2.0
        if busy_pct < QUIET_PCT:
            break
    return busy_pct


def children_cpu() -> float:
    """User + system CPU seconds of the child processes waited for so far (wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def advance(rotation: Rotation, wrk_output: str, requests: int) -> None:
    """Move the rotation past every token the last run sent (the script reports where)."""
    found = re.search(r"^rotating_bearer: next (\d+)", wrk_output, re.MULTILINE)
    if found is None or int(found.group(1)) < rotation.cursor + requests:
        raise BenchError(f"{ROTATION_SCRIPT.name} did not report how far it got")
    rotation.cursor = int(found.group(1)) % rotation.count


def wrk_command(
    server: Server,
    endpoint: str,
    credential: Credential,
    load: Load,
    duration: int,
    *,
    rotation: Rotation | None = None,
) -> list[str]:
    """The wrk command line; a rotating credential adds the script and its arguments.

    Without a script wrk sends one pre-built request over and over: the cheapest client.
    """
    command = [
        *pinned(load.cpus),
        "wrk",
        f"--threads={load.threads}",
        f"--connections={load.connections}",
        f"--duration={duration}s",
        "--timeout=5s",
        "--latency",
        *(f"--header={name}: {value}" for name, value in credential.headers.items()),
    ]
    url = server.url(ENDPOINTS[endpoint])
    rotation = rotation or credential.rotation
    if rotation is None:
        return [*command, url]
    args = [str(rotation.path), str(rotation.cursor), str(load.threads)]
    args += [rotation.header, rotation.prefix]
    return [*command, f"--script={ROTATION_SCRIPT}", url, "--", *args]


def run_wrk(
    server: Server,
    endpoint: str,
    credential: Credential,
    load: Load,
    duration: int,
    *,
    quiet_wait: int = 0,
) -> WrkResult:
    """Run wrk against ``endpoint`` for ``duration`` seconds; every response must be 2xx.

    With ``quiet_wait``, first wait up to that many seconds for the machine to go idle.
    """
    if (
        credential.expires_at is not None
        and time.time() + duration + EXPIRY_MARGIN > credential.expires_at
    ):
        raise BenchError(
            "the credential expires before this wrk run would end; use fewer or shorter "
            "rounds, or a longer VELVETROPE_ACCESS_TOKEN_TTL in the case's env"
        )
    rotation = None
    if credential.proofs is not None:  # proofs are single-use: a new file for every run
        count = duration * PROOFS_PER_SECOND
        rotation = credential.proofs.rotation(endpoint, ENDPOINTS[endpoint], count)
    command = wrk_command(server, endpoint, credential, load, duration, rotation=rotation)
    if quiet_wait:
        busy = wait_for_quiet(quiet_wait)
        if busy is not None and busy >= QUIET_PCT:
            say(f"warning: the machine stayed busy ({busy:.0f}% of a CPU); measuring anyway")
    cpu_before, busy_before, wrk_before = server.cpu_seconds(), machine_busy(), children_cpu()
    started = time.monotonic()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration + WRK_GRACE, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {duration + WRK_GRACE:.0f} s") from exc
    wall = time.monotonic() - started
    cpu_after, busy_after, wrk_after = server.cpu_seconds(), machine_busy(), children_cpu()
    if done.returncode != 0:
        raise BenchError(f"wrk exited with {done.returncode}: {done.stderr.strip()}")
    result = parse_wrk(endpoint, done.stdout)
    if credential.rotation is not None:
        advance(credential.rotation, done.stdout, result.requests)
    if cpu_before is not None and cpu_after is not None and result.requests:
        server_cpu, wrk_cpu = cpu_after - cpu_before, wrk_after - wrk_before
        result = dataclasses.replace(
            result,
            server_cpu_us_per_request=server_cpu / result.requests * 1e6,
            server_cpu_pct=100 * server_cpu / wall,
            wrk_cpu_pct=100 * wrk_cpu / wall,
            other_cpu_pct=(
                None
                if busy_before is None or busy_after is None
                else max(0.0, 100 * (busy_after - busy_before - server_cpu - wrk_cpu) / wall)
            ),
        )
    if result.requests == 0 or result.non_2xx:
        raise BenchError(
            f"{endpoint}: {result.non_2xx} of {result.requests} responses were not 2xx; "
            "did the credential stop working?"
        )
    if any(result.socket_errors.values()):
        say(f"warning: {endpoint}: wrk socket errors {result.socket_errors}")
    return result


# --- one case -------------------------------------------------------------------------------


@dataclass(slots=True)
class CaseResult:
    """A case's rounds and their medians."""

    case: str
    description: str
    endpoints: tuple[str, ...]
    target: float = TARGET_RATIO
    rounds: list[dict[str, WrkResult]] = field(default_factory=list)
    error: str | None = None
    unavailable: str | None = None  # why the case could not run here (no numbers)
    raw_verify_us: list[float] = field(default_factory=list)  # one per round
    cold_check_us: list[float] = field(default_factory=list)  # in process, one per round

    def median(self, endpoint: str, metric: str) -> float:
        """The median of ``metric`` over the rounds, for ``endpoint``."""
        return statistics.median(float(getattr(r[endpoint], metric)) for r in self.rounds)

    def ratios(self, endpoint: str) -> list[float]:
        """``endpoint``/open throughput, per round (each round ran all endpoints back to back)."""
        return [r[endpoint].rps / r["open"].rps for r in self.rounds]

    def cpu_ratios(self, endpoint: str) -> list[float]:
        """Open/``endpoint`` server CPU per request, per round: the ratio net of machine noise.

        When the server saturates its CPU, throughput is the inverse of CPU per request,
        so this estimates the throughput ratio without the noise other processes add.
        """
        return [
            o / e
            for r in self.rounds
            if (o := r["open"].server_cpu_us_per_request)
            and (e := r[endpoint].server_cpu_us_per_request)
        ]

    def summary(self) -> dict[str, Any]:
        """The headline numbers (empty when the case failed).

        For every endpoint ``e``: ``e_rps``, ``e_cpu_us`` (server CPU us per request),
        ``e_p50_ms``, ``e_p99_ms``; for every endpoint but open, also ``e_ratio`` (the
        median of per-round ``e``/open req/s), ``e_ratio_min``, ``e_ratio_max``,
        ``e_cpu_ratio`` and ``e_noisy``. ``meets_target`` (against ``target_ratio``)
        and ``noisy`` are about :data:`TARGET_ENDPOINT`.
        """
        if self.error is not None or self.unavailable is not None or not self.rounds:
            return {}
        with_cpu = all(r[e].server_cpu_us_per_request for r in self.rounds for e in r)
        out: dict[str, Any] = {}
        for endpoint in self.endpoints:
            out[f"{endpoint}_rps"] = self.median(endpoint, "rps")
            out[f"{endpoint}_cpu_us"] = (
                self.median(endpoint, "server_cpu_us_per_request") if with_cpu else None
            )
            if endpoint == "open":
                continue
            ratios = self.ratios(endpoint)
            ratio = statistics.median(ratios)
            cpu_ratio = statistics.median(self.cpu_ratios(endpoint)) if with_cpu else None
            out[f"{endpoint}_ratio"] = ratio
            out[f"{endpoint}_ratio_min"] = min(ratios)
            out[f"{endpoint}_ratio_max"] = max(ratios)
            out[f"{endpoint}_cpu_ratio"] = cpu_ratio
            out[f"{endpoint}_noisy"] = max(ratios) - min(ratios) > NOISE or (
                cpu_ratio is not None and abs(ratio - cpu_ratio) > NOISE
            )
        for endpoint in self.endpoints:
            for p in (50, 99):
                out[f"{endpoint}_p{p}_ms"] = self.median(endpoint, f"latency_p{p}_ms")
        others = [r[e].other_cpu_pct for r in self.rounds for e in r]
        out["other_cpu_pct_max"] = (
            max(o for o in others if o is not None) if all(o is not None for o in others) else None
        )
        out["server_cpu_pct_min"] = min(
            (r[e].server_cpu_pct or 0.0) for r in self.rounds for e in r
        )
        if self.raw_verify_us and with_cpu:
            # The check's own cost (endpoint CPU minus open's, same request bytes) next
            # to one signature check alone, both measured in this run.
            raw = statistics.median(self.raw_verify_us)
            out["raw_verify_us"] = raw
            if self.cold_check_us:
                out["cold_check_us"] = statistics.median(self.cold_check_us)
                out["cold_check_to_raw"] = statistics.median(
                    c / r for c, r in zip(self.cold_check_us, self.raw_verify_us, strict=True)
                )
            for endpoint in ("guarded", "protected"):
                if endpoint in self.endpoints:
                    check = out[f"{endpoint}_cpu_us"] - out["open_cpu_us"]
                    out[f"{endpoint}_check_us"] = check
                    out[f"{endpoint}_check_to_raw"] = check / raw if raw > 0 else None
        out["target_endpoint"] = TARGET_ENDPOINT
        out["target_ratio"] = self.target
        out["meets_target"] = out[f"{TARGET_ENDPOINT}_ratio"] >= self.target
        out["noisy"] = out[f"{TARGET_ENDPOINT}_noisy"]
        return out

    def to_json(self) -> dict[str, Any]:
        """Everything, for ``latest.json``."""
        return {
            "case": self.case,
            "description": self.description,
            "error": self.error,
            "not_available": self.unavailable,
            "raw_verify_us": self.raw_verify_us,
            "cold_check_us": self.cold_check_us,
            "summary": self.summary(),
            "rounds": [{k: asdict(v) for k, v in r.items()} for r in self.rounds],
        }


def say(message: str) -> None:
    """Progress, on stderr so stdout holds only the table."""
    print(message, file=sys.stderr, flush=True)


def run_case(
    case: Case,
    load: Load,
    *,
    rounds: int,
    warmup: int,
    endpoints: tuple[str, ...],
    server_cpus: Sequence[int],
) -> CaseResult:
    """Start a server for ``case``, sign in, verify, and run the alternating rounds."""
    result = CaseResult(case.name, case.description, endpoints, case.target)
    reason = case.missing() if case.missing is not None else None
    if reason is not None:
        result.unavailable = reason
        say(f"[{case.name}] not available: {reason}")
        return result
    try:
        with (
            tempfile.TemporaryDirectory(prefix=f"velvetrope-bench-{case.name}-") as scratch,
            running_server(case, Path(scratch), server_cpus) as server,
        ):
            credential = case.credential(server)
            verify(server, credential)
            say(f"[{case.name}] verified: checked endpoints answer 401 without the credential")
            cache = session_cache(server)
            if cache is not None and cache["enabled"] and not cache["push_connected"]:
                raise BenchError("the session cache is not listening: every lookup would bypass it")
            if warmup:
                say(f"[{case.name}] warming up ({warmup} s per endpoint)")
                for endpoint in endpoints:
                    run_wrk(server, endpoint, credential, load, warmup)
            for index in range(rounds):
                # Alternate the order so slow drift (heat, other load) cancels out.
                order = endpoints if index % 2 == 0 else endpoints[::-1]
                one: dict[str, WrkResult] = {}
                for endpoint in order:
                    run = one[endpoint] = run_wrk(
                        server,
                        endpoint,
                        credential,
                        load,
                        load.duration,
                        quiet_wait=load.quiet_wait,
                    )
                    cpu = run.server_cpu_us_per_request
                    say(
                        f"[{case.name}] round {index + 1}/{rounds} {endpoint:>9}: "
                        f"{run.rps:>8,.0f} req/s  p50 {run.latency_p50_ms:.2f} ms  "
                        f"p99 {run.latency_p99_ms:.2f} ms  "
                        f"server CPU {'n/a' if cpu is None else f'{cpu:.0f} us'}/req"
                        + (
                            ""
                            if run.other_cpu_pct is None
                            else f" (server {run.server_cpu_pct:.0f}%, wrk "
                            f"{run.wrk_cpu_pct:.0f}%, other {run.other_cpu_pct:.0f}% of a CPU)"
                        )
                    )
                result.rounds.append(one)
                if credential.raw_verify is not None:
                    raw, cold = credential.raw_verify()
                    result.raw_verify_us.append(raw)
                    if cold is not None:
                        result.cold_check_us.append(cold)
                    say(
                        f"[{case.name}] round {index + 1}/{rounds} raw signature check: "
                        f"{raw:.1f} us"
                        + ("" if cold is None else f", whole cold check in process {cold:.1f} us")
                    )
                ratios = "  ".join(
                    f"{e} {result.ratios(e)[-1]:.3f}" for e in endpoints if e != "open"
                )
                say(f"[{case.name}] round {index + 1}/{rounds} ratios to open: {ratios}")
            cache = session_cache(server)
            if cache is not None and cache["enabled"]:
                say(
                    f"[{case.name}] session cache: {cache['hits']:,} hits, "
                    f"{cache['misses']:,} misses (to the store), push "
                    f"{'connected' if cache['push_connected'] else 'DOWN'}"
                )
    except (BenchError, OSError) as exc:
        result.error = str(exc)
        say(f"[{case.name}] FAILED: {exc}")
    return result


# --- reporting ------------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def _wrk_version() -> str:
    # `wrk -v` prints its version and usage, and exits 1.
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10, check=False)
    first = (done.stdout or done.stderr).splitlines()
    return first[0].split(" Copyright")[0] if first else "unknown"


def _source_state() -> str:
    """The commit the measured code is at, and whether ``src/`` differs from it."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(HERE.parent), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    changed = git("status", "--porcelain", "--", "src")
    return f"{commit} + uncommitted src changes" if changed else commit


def machine_info(
    server_cpus: Sequence[int], wrk_cpus: Sequence[int], loadavg: Sequence[float]
) -> dict[str, Any]:
    """Where and with what the numbers were measured."""
    return {
        "nproc": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in loadavg],
        "cpus_available": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "wrk": _wrk_version(),
        "source": _source_state(),
        "server_cpus": list(server_cpus) or "any",
        "wrk_cpus": list(wrk_cpus) or "any",
        "packages": {
            name: _version(name)
            for name in (
                "velvetrope",
                "fastapi",
                "starlette",
                "uvicorn",
                "httptools",
                "uvloop",
                "pydantic",
            )
        },
    }


def _headers(floor: bool) -> list[str]:
    return [
        "case",
        "open req/s",
        "guarded ratio (AuthMiddleware)",
        "protected ratio (Depends)",
        *(["floor ratio (empty Depends)", "both ratio (guard + Depends)"] if floor else []),
        "guarded >= target",
        "CPU ratio guarded / Depends",
        "p50 ms open / guarded / Depends",
        "p99 ms open / guarded / Depends",
        f"server CPU us/req open / guarded / Depends{' / floor / both' if floor else ''}",
        "check us (guarded - open)",
        "raw verify us",
        "cold check us (in process)",
        "cold check / raw verify",
        "other CPU % (max)",
    ]


def _ratio_cell(s: Mapping[str, Any], endpoint: str) -> str:
    if f"{endpoint}_ratio" not in s:
        return "n/a"
    return (
        f"{s[f'{endpoint}_ratio']:.3f} "
        f"({s[f'{endpoint}_ratio_min']:.3f}-{s[f'{endpoint}_ratio_max']:.3f})"
        + (" noisy" if s[f"{endpoint}_noisy"] else "")
    )


def _slashed(values: Sequence[float | None], spec: str) -> str:
    return " / ".join("n/a" if v is None else format(v, spec) for v in values)


def _row_cells(result: CaseResult, floor: bool) -> list[str]:
    s = result.summary()
    width = len(_headers(floor))
    if result.unavailable is not None:
        return [result.case, "not available", *([""] * (width - 2))]
    if not s:
        return [result.case, "error", *([""] * (width - 2))]
    timed = ("open", "guarded", "protected")
    cpu = (*timed, *(("floor", "both") if floor else ()))
    return [
        result.case,
        f"{s['open_rps']:,.0f}",
        _ratio_cell(s, "guarded"),
        _ratio_cell(s, "protected"),
        *([_ratio_cell(s, "floor"), _ratio_cell(s, "both")] if floor else []),
        ("yes" if s["meets_target"] else "NO")
        + f" ({s['target_ratio']:.2f})"
        + (" (noisy)" if s["noisy"] else ""),
        _slashed([s.get("guarded_cpu_ratio"), s.get("protected_cpu_ratio")], ".3f"),
        _slashed([s.get(f"{e}_p50_ms") for e in timed], ".2f"),
        _slashed([s.get(f"{e}_p99_ms") for e in timed], ".2f"),
        _slashed([s.get(f"{e}_cpu_us") for e in cpu], ".0f"),
        _slashed([s.get("guarded_check_us")], ".0f") if "raw_verify_us" in s else "",
        _slashed([s.get("raw_verify_us")], ".0f") if "raw_verify_us" in s else "",
        _slashed([s.get("cold_check_us")], ".0f") if "cold_check_us" in s else "",
        _slashed([s.get("cold_check_to_raw")], ".2f") if "cold_check_us" in s else "",
        _slashed([s["other_cpu_pct_max"]], ".0f"),
    ]


def _any_floor(results: Sequence[CaseResult]) -> bool:
    return any("floor" in r.endpoints for r in results)


def text_table(results: Sequence[CaseResult]) -> str:
    """An aligned plain-text table for the terminal."""
    floor = _any_floor(results)
    headers = _headers(floor)
    rows = [headers, *(_row_cells(r, floor) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.extend(f"{r.case}: {r.error}" for r in results if r.error)
    lines.extend(f"{r.case}: not available: {r.unavailable}" for r in results if r.unavailable)
    return "\n".join(lines)


def markdown(report: Mapping[str, Any], results: Sequence[CaseResult]) -> str:
    """``latest.md``: the table and the conditions it was measured under."""
    m, p = report["machine"], report["parameters"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    floor = _any_floor(results)
    headers = _headers(floor)
    ratios = 4 if floor else 2
    align = [
        "---",
        "---:",
        *(["---:"] * ratios),
        ":---:",
        *(["---:"] * (len(headers) - 3 - ratios)),
    ]
    lines = [
        "# Per-request check overhead, every way in",
        "",
        "Same endpoint, same body, open and behind velvetrope's check: "
        "`AuthMiddleware` (*guarded*, the hot-path integration) and "
        "`Depends(vr.principal)` (*protected*)"
        + (
            "; *floor* is the same endpoint behind a dependency that does nothing, *both* "
            "behind the guard and `Depends` (the dependency reuses the guard's principal)"
            if floor
            else ""
        )
        + "; "
        f"median of {p['rounds']} rounds of {p['duration_s']} s per endpoint, "
        f"{p['connections']} connections, {p['threads']} wrk threads. "
        f"Target: guarded at {TARGET_RATIO:.0%} or more of open"
        + "".join(f"; `{r.case}`: {r.target:.0%}" for r in results if r.target != TARGET_RATIO)
        + ".",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(align) + "|",
        *("| " + " | ".join(_row_cells(r, floor)) + " |" for r in results),
        "",
        *(f"- `{r.case}`: {r.description}" for r in results),
        *(f"- `{r.case}` failed: {r.error}" for r in results if r.error),
        *(f"- `{r.case}` not available: {r.unavailable}" for r in results if r.unavailable),
        "",
        "*check us* is the server CPU per request of the guarded endpoint minus open's "
        "(the same request bytes, so what the check costs); *raw verify us* is one "
        "signature check alone (joserfc's algorithm object over the signing input, "
        "`cryptography` underneath; ES256 through `cryptography` for DPoP proofs), timed "
        "in the runner after every round of the same run; *cold check us* is "
        "velvetrope's whole check of a fresh token (`TokenService.verify`: parse, header, "
        "key, signature, claims, revocations) in the same process, timed in batches "
        "alternating with the raw ones so both see the same machine; *cold check / raw "
        "verify* is the median of their per-round ratios (target: 1.3 or less). On a busy "
        "machine the server's *check us* inflates more than the runner's figures (the "
        "server shares its CPU under load), so the in-process ratio is the one to judge.",
        "",
        "*ratio* is endpoint/open requests per second, the median of per-round ratios "
        "(each round runs every endpoint back to back, in alternating order), with the "
        "range over rounds. Every request of a case carries the same credential headers, "
        "open ones included (jwt-cold: a new token on every request, on every endpoint). "
        "*CPU ratio* is open/endpoint server CPU time per request: the same quantity "
        "with less noise from other processes, as long as the server saturates its CPU. "
        f"*noisy*: the rounds spread, or the two ratios differ, by more than {NOISE}; "
        "rerun on a quiet machine before trusting the verdict. *other CPU %*: CPU time "
        "used by neither the server nor wrk during a run (other processes, this "
        "script), in percent of one CPU, the worst run of the case."
        + (
            " *floor*: the same endpoint behind a dependency that does nothing; "
            "open to floor is FastAPI's price for any dependency, floor to protected "
            "is the check itself."
            if floor
            else ""
        ),
        "",
        f"Measured {report['started_at']} to {report['generated_at']} "
        f"on {m['nproc']} CPUs ({m['cpu_model']}), "
        f"{m['platform']}, {m['python']}, {m['wrk']}; server on CPUs {m['server_cpus']}, "
        f"wrk on CPUs {m['wrk_cpus']}; load average at start {m['loadavg_at_start']}. "
        f"{packages}. Source: {m['source']}.",
        "",
        f"Command: `{report['command']}`",
        "",
    ]
    return "\n".join(lines)


def render(path: Path) -> str:
    """``latest.md`` again from a run's ``latest.json`` (same table, current layout)."""
    report = json.loads(path.read_text())
    results = []
    for case in report["cases"]:
        endpoints = tuple(report["parameters"]["endpoints"])
        result = CaseResult(
            case["case"],
            case["description"],
            endpoints,
            case["summary"].get("target_ratio", TARGET_RATIO),
            rounds=[{k: WrkResult(**v) for k, v in r.items()} for r in case["rounds"]],
            error=case["error"],
            unavailable=case.get("not_available"),
            raw_verify_us=case.get("raw_verify_us", []),
            cold_check_us=case.get("cold_check_us", []),
        )
        results.append(result)
    return markdown(report, results)


def publish(
    result: dict[str, Any],
    *,
    script: str,
    argv: Sequence[str],
    text: str,
    results: Path | None,
    server_cpus: Sequence[int] = (),
    wrk_cpus: Sequence[int] = (),
    loadavg: Sequence[float] = (0.0, 0.0, 0.0),
) -> None:
    """The end of every benchmark script: record the command and the machine in
    ``result``, print ``text``, and write ``result`` to ``results/<script>.json``."""
    result["command"] = " ".join(["python", f"benchmarks/{script}.py", *argv])
    result["machine"] = machine_info(server_cpus, wrk_cpus, loadavg)
    print(text)
    if results is not None:
        write_atomically(results / f"{script}.json", json.dumps(result, indent=2) + "\n")


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(text)
    scratch.replace(path)


# --- command line ---------------------------------------------------------------------------


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def _case_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown case {', '.join(unknown) or '(none)'}; choose from {', '.join(CASES)}"
        )
    return names


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; every number is bounded."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=_bounded(1, 600), default=10, help="seconds per run")
    parser.add_argument("--connections", type=_bounded(1, 4096), default=32)
    parser.add_argument("--threads", type=_bounded(1, 64), default=2, help="wrk threads")
    parser.add_argument("--rounds", type=_bounded(1, 50), default=3)
    parser.add_argument(
        "--warmup", type=_bounded(0, 60), default=3, help="seconds per endpoint, not recorded"
    )
    parser.add_argument(
        "--stores",
        "--cases",
        dest="cases",
        type=_case_names,
        default=None,
        help=f"comma-separated cases (default: {','.join(DEFAULT_CASES)}; "
        f"with --smoke: {','.join(SMOKE_CASES)}; also: "
        f"{','.join(n for n in CASES if n not in DEFAULT_CASES)})",
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="run the server on the first CPU and wrk on the others (needs 2+ CPUs)",
    )
    parser.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure an endpoint behind a no-op dependency (FastAPI's own cost) and "
        "one behind the guard and Depends together",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 2 if a case's guarded ratio misses its target"
    )
    parser.add_argument(
        "--quiet-wait",
        type=_bounded(0, 600),
        default=0,
        metavar="SECONDS",
        help="before each measured run, wait up to this long for other processes to go "
        f"idle (under {QUIET_PCT:.0f}%% of a CPU); for shared machines",
    )
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="output directory")
    parser.add_argument(
        "--render",
        type=Path,
        default=None,
        metavar="LATEST_JSON",
        help="print the markdown table of a finished run's latest.json, and exit",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a correctness run for the test suite: 1 round of 1 s, no warmup, no floor, "
        "nothing written; exit 1 if any endpoint misbehaves",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.duration, args.rounds, args.warmup, args.floor = 1, 1, 0, False
        args.check, args.results, args.quiet_wait = False, None, 0
    if args.cases is None:
        args.cases = list(SMOKE_CASES if args.smoke else DEFAULT_CASES)
    if args.threads > args.connections:
        parser.error("--threads cannot exceed --connections")
    return args


def cpu_split(pin: bool) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(server CPUs, wrk CPUs): one CPU for the server, the rest for wrk; none when off."""
    if not pin:
        return (), ()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or shutil.which("taskset") is None:
        say("--pin needs 2+ CPUs and taskset; not pinning")
        return (), ()
    return (cpus[0],), tuple(cpus[1:])


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    # Python's default for SIGTERM skips `finally`; exiting this way stops wrk and the server.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the requested cases, print the table, write the results; return the exit status."""
    args = parse_args(argv)
    if args.render is not None:  # the tables again, from a run's latest.json
        print(render(args.render))
        return 0
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if shutil.which("wrk") is None:
        say("wrk is not installed (apt-get install wrk)")
        return 1
    started, loadavg = datetime.now(UTC), os.getloadavg()  # before our own load
    server_cpus, wrk_cpus = cpu_split(args.pin)
    load = Load(args.duration, args.connections, args.threads, wrk_cpus, args.quiet_wait)
    endpoints = tuple(e for e in ENDPOINTS if args.floor or e not in ("floor", "both"))
    results = [
        run_case(
            CASES[name],
            load,
            rounds=args.rounds,
            warmup=args.warmup,
            endpoints=endpoints,
            server_cpus=server_cpus,
        )
        for name in args.cases
    ]
    report = {
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(["python", "benchmarks/run.py", *(argv or sys.argv[1:])]),
        "target_ratio": TARGET_RATIO,
        "parameters": {
            "duration_s": args.duration,
            "connections": args.connections,
            "threads": args.threads,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "quiet_wait_s": args.quiet_wait,
            "endpoints": {name: ENDPOINTS[name] for name in endpoints},
            "target_endpoint": TARGET_ENDPOINT,
            "cold_tokens": COLD_TOKENS,
            "smoke": args.smoke,
        },
        "machine": machine_info(server_cpus, wrk_cpus, loadavg),
        "cases": [r.to_json() for r in results],
    }
    print(text_table(results))
    if args.smoke:
        print("\nsmoke run: every endpoint answered as it should; 1 s is no measurement")
    if args.results is not None:  # --smoke writes nothing
        write_atomically(args.results / "latest.json", json.dumps(report, indent=2) + "\n")
        write_atomically(args.results / "latest.md", markdown(report, results))
        print(f"\nwrote {args.results / 'latest.json'} and {args.results / 'latest.md'}")
    if any(r.error for r in results):
        return 1
    if args.check and not all(r.summary()["meets_target"] for r in results if not r.unavailable):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
