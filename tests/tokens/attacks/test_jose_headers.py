"""Header rows: KID (JWT-04), key material named in the token (JKU, X5U, JWK, X5C; JWT-03),
CRIT (JWT-07) and JWE members on a JWS (JWT-06)."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.support.stores import every_backend
from tests.tokens.attacks.helpers import hmac_token, self_signed_cert
from tests.tokens.conftest import Case, Forger, b64url, reject_each, segment, without
from velvetrope import FrozenClock
from velvetrope.core.tokens.access import ACCESS_TYP
from velvetrope.errors import InvalidToken

# --- KID (JWT-04) -----------------------------------------------------------------------------


HOSTILE_KIDS: list[object] = [
    "../../../../dev/null",
    "/dev/null",
    "../../../../../../etc/passwd",
    "x' UNION SELECT '1';--",
    "' OR 1=1--",
    "|sleep 10",
    "$(sleep 10)",
    "`sleep 10`",
    "A" * 10240,
    "A" * 129,
    "",
    "kid\u0000",
    "k\u00efd",
    123,
    None,
    True,
    {"kid": "x"},
    ["x"],
]


async def test_JWT_04_KID_hostile_kid_is_rejected_quickly(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """jwt_tool's kid cases, signed with the real key so the ``kid`` is the only problem;
    the kid is never a path, a query or a command (each rejection is timed < 1 s)."""
    cases: dict[str, Case] = {
        repr(kid)[:40]: (forger.token(header=forger.with_header(kid=kid)), None)
        for kid in HOSTILE_KIDS
    }
    cases["missing"] = (forger.token(header=without(forger.header, "kid")), "bad kid")
    cases["unknown"] = (forger.token(header=forger.with_header(kid="A" * 43)), "unknown kid")
    playbook = {
        "dev-null/HS256-empty": ("../../../../dev/null", b""),
        "/dev/null/HS256-empty": ("/dev/null", b""),
        "sqli/HS256-1": ("x' UNION SELECT '1';--", b"1"),
        "sleep/HS256-empty": ("|sleep 10", b""),
    }
    for name, (kid, secret) in playbook.items():
        cases[name] = (hmac_token(forger, secret, kid=kid), "bad kid")
    await reject_each(forger.service, client, cases)


class _CountingList:
    """Wraps a key store's ``list_keys``; optionally awaits, as a networked store would."""

    def __init__(self, inner: Any, *, yields: bool) -> None:
        self.inner = inner
        self.yields = yields
        self.calls = 0

    async def __call__(self, purpose: str) -> Any:
        self.calls += 1
        if self.yields:
            await asyncio.sleep(0.001)
        return await self.inner(purpose)


def _unknown_kid_tokens(forger: Forger, count: int, prefix: str) -> list[str]:
    return [
        forger.token(header=forger.with_header(kid=f"{prefix}{i:06d}"), signature=b"\x00" * 64)
        for i in range(count)
    ]


@every_backend
async def test_JWT_04_KID_unknown_kids_reload_the_ring_at_most_once_per_interval(
    forger: Forger, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sequential unknown ``kid`` values: at most one store read per ``reload_every`` (5 s)."""
    store = forger.service.stores.keys
    spy = _CountingList(store.list_keys, yields=False)
    monkeypatch.setattr(store, "list_keys", spy)
    verify = forger.service.tokens.access.verify
    for token in _unknown_kid_tokens(forger, 300, "burst-a-"):
        with pytest.raises(InvalidToken):
            await verify(token)
    assert spy.calls == 1  # the first unknown kid reloads; the other 299 wait
    clock.advance(timedelta(seconds=4))
    for token in _unknown_kid_tokens(forger, 300, "burst-b-"):
        with pytest.raises(InvalidToken):
            await verify(token)
    assert spy.calls == 1  # still inside the interval
    clock.advance(timedelta(seconds=2))
    for token in _unknown_kid_tokens(forger, 300, "burst-c-"):
        with pytest.raises(InvalidToken):
            await verify(token)
    assert spy.calls == 2


@every_backend
async def test_JWT_04_KID_concurrent_unknown_kids_do_not_stampede_a_slow_key_store(
    forger: Forger, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same, with concurrent requests and a store that awaits I/O (Redis/Postgres-like).

    ``KeyRing.refresh_if_unknown`` checks the interval *before* taking its lock and does
    not re-check after, so every request that passed the check reloads in turn.
    """
    store = forger.service.stores.keys
    spy = _CountingList(store.list_keys, yields=True)
    monkeypatch.setattr(store, "list_keys", spy)
    clock.advance(timedelta(seconds=6))
    verify = forger.service.tokens.access.verify

    async def attempt(token: str) -> str:
        try:
            await verify(token)
        except InvalidToken as exc:
            return exc.reason
        return "accepted"  # pragma: no cover

    reasons = await asyncio.gather(*map(attempt, _unknown_kid_tokens(forger, 50, "storm-")))
    assert set(reasons) == {"unknown kid"}
    assert spy.calls <= 1, f"{spy.calls} key-store reloads for one burst of 50 unknown kids"


# --- JKU / X5U / JWK / X5C: key material named in the token (JWT-03) --------------------------


@dataclass
class AttackerServer:
    """A loopback HTTP server an attacker controls; counts every request it gets."""

    url: str
    hits: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Attacker:
    private: Ed25519PrivateKey
    kid: str
    jwk: dict[str, str]
    cert_der: bytes

    def sign(self, header: dict[str, Any], claims: dict[str, Any]) -> str:
        head, body = segment(header), segment(claims)
        return f"{head}.{body}.{b64url(self.private.sign(f'{head}.{body}'.encode()))}"


@pytest.fixture
def attacker() -> Attacker:
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    kid = b64url(json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode())[:43]
    cert = x509.load_pem_x509_certificate(self_signed_cert(private))
    return Attacker(
        private, kid, {**jwk, "kid": kid}, cert.public_bytes(serialization.Encoding.DER)
    )


@pytest.fixture
def attacker_server(attacker: Attacker) -> Iterator[AttackerServer]:
    hits: list[str] = []
    jwks = json.dumps({"keys": [{**attacker.jwk, "alg": "EdDSA", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(jwks)))
            self.end_headers()
            self.wfile.write(jwks)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield AttackerServer(f"http://127.0.0.1:{server.server_port}", hits)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_JWT_03_JKU_url_headers_are_rejected_and_never_fetched(
    forger: Forger,
    client: httpx.AsyncClient,
    attacker: Attacker,
    attacker_server: AttackerServer,
) -> None:
    """``jku``/``x5u`` pointing at a live attacker server (and file://, cloud metadata):
    refused, and the server sees zero requests (PyJWT CVE-2026-48522 class)."""
    targets = {
        "attacker-jwks": f"{attacker_server.url}/jwks.json",
        "attacker-cert": f"{attacker_server.url}/cert.pem",
        "file": "file:///etc/passwd",
        "metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "ipv6-loopback": "http://[::1]:1/jwks.json",
    }
    cases: dict[str, Case] = {}
    for member in ("jku", "x5u"):
        for target_name, target in targets.items():
            for kid_name, kid in (("attacker-kid", attacker.kid), ("our-kid", forger.kid)):
                header = {"alg": "EdDSA", "typ": ACCESS_TYP, "kid": kid, member: target}
                cases[f"{member}/{target_name}/{kid_name}"] = (
                    attacker.sign(header, forger.claims),
                    f"header member not allowed: {member}",
                )
            # our real key signs it: the member alone is enough to refuse
            real = forger.token(header=forger.with_header(**{member: target}))
            cases[f"{member}/{target_name}/real-key"] = (real, "header member not allowed")
    await reject_each(forger.service, client, cases)
    assert attacker_server.hits == []
    # The counter does work: a fetch of our own registers.
    async with httpx.AsyncClient() as probe:
        assert (await probe.get(f"{attacker_server.url}/probe")).status_code == 200
    assert attacker_server.hits == ["/probe"]


async def test_JWT_03_JWK_embedded_jwk_or_x5c_is_rejected(
    forger: Forger, client: httpx.AsyncClient, attacker: Attacker
) -> None:
    """Wycheproof tcId 32, CVE-2018-0114, Authlib CVE-2026-27962; and an ``x5c`` chain."""
    x5c = [base64.b64encode(attacker.cert_der).decode("ascii")]
    cases: dict[str, Case] = {}
    for kid_name, kid in (("attacker-kid", attacker.kid), ("our-kid", forger.kid), ("none", None)):
        base: dict[str, Any] = {"alg": "EdDSA", "typ": ACCESS_TYP}
        if kid is not None:
            base["kid"] = kid
        cases[f"jwk/{kid_name}"] = (
            attacker.sign({**base, "jwk": attacker.jwk}, forger.claims),
            "header member not allowed: jwk",
        )
        cases[f"x5c/{kid_name}"] = (
            attacker.sign({**base, "x5c": x5c}, forger.claims),
            "header member not allowed: x5c",
        )
    cases["attacker-key-our-header"] = (attacker.sign(forger.header, forger.claims), "signature")
    await reject_each(forger.service, client, cases)


# --- CRIT (JWT-07) and JWE headers on a JWS (JWT-06) ------------------------------------------


CRIT_HEADERS: list[dict[str, Any]] = [
    {"crit": ["x"], "x": 1},
    {"crit": []},
    {"crit": "x", "x": 1},
    {"crit": ["alg"]},
    {"crit": ["kid"]},
    {"crit": ["y"]},
    {"crit": ["b64"], "b64": False},
    {"crit": ["b64"], "b64": True},
    {"crit": [1]},
    {"crit": None},
    {"crit": ["exp"], "exp": 1},
    {"b64": False},
]


JWE_MEMBERS: list[dict[str, Any]] = [
    {"cty": "JWT"},
    {"cty": "at+jwt"},
    {"enc": "A256GCM"},
    {"zip": "DEF"},
    {"p2c": 2**31 - 1},
    {"epk": {"kty": "EC"}},
    {"x5t#S256": "AAAA"},
]


async def test_JWT_07_CRIT_and_JWT_06_extension_headers_are_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """We implement no extensions: any ``crit``, ``b64``, ``cty``, ``enc``, ``zip``...
    is refused outright (the header may hold only alg, typ, kid)."""
    cases: dict[str, Case] = {
        json.dumps(extra): (
            forger.token(header=forger.with_header(**extra)),
            "header member not allowed",
        )
        for extra in CRIT_HEADERS + JWE_MEMBERS
    }
    await reject_each(forger.service, client, cases)


JWE_HEADERS: list[dict[str, Any]] = [
    {"alg": "RSA-OAEP", "enc": "A256GCM"},
    {"alg": "RSA1_5", "enc": "A128CBC-HS256"},
    {"alg": "dir", "enc": "A128GCM"},
    {"alg": "dir", "enc": "A128GCM", "zip": "DEF"},
    {"alg": "PBES2-HS256+A128KW", "enc": "A128GCM", "p2c": 2147483647, "p2s": "AAAAAAAAAAA"},
    {"alg": "ECDH-ES", "enc": "A128GCM", "epk": {"kty": "EC", "crv": "P-256"}},
]


async def test_JWT_06_JWE_five_segment_tokens_are_rejected_without_decrypting(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """A zip bomb in the ciphertext and p2c = 2^31 - 1: all refused by the format check,
    which runs before any decoding (so nothing is decompressed or derived)."""
    bomb = b64url(zlib.compress(b"\x00" * (1 << 20), 9))
    cases: dict[str, Case] = {}
    for jwe in JWE_HEADERS:
        header = segment({**jwe, "kid": forger.kid, "typ": ACCESS_TYP})
        for cek_name, cek in (("empty-cek", ""), ("cek", b64url(b"\x01" * 32))):
            parts = [header, cek, b64url(b"\x02" * 12), bomb, b64url(b"\x03" * 16)]
            cases[f"{jwe['alg']}/{cek_name}"] = (".".join(parts), "not a compact JWS")
    await reject_each(forger.service, client, cases)
