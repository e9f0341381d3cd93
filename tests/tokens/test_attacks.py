"""The JWT attack catalogue (checklist Part 2) against velvetrope's bearer verification.

Every forged token is built by hand (see ``conftest.Forger``) and, unless the attack is
the signature itself, signed with the server's *real* key, so that the one thing under
test is the only thing wrong with it. Each is presented twice:

* to the core verifier, ``service.tokens.access.verify``, which must raise
  ``InvalidToken`` (usually with the reason that proves *which* check caught it); and
* over HTTP, ``GET /auth/me`` with ``Authorization: Bearer``: 401, body exactly
  ``{"error": "invalid_token", "detail": ...}``, ``WWW-Authenticate: Bearer
  realm="velvetrope", error="invalid_token"``, no echo of the token, and fast (JWT-19).

A row of the catalogue is usually one test that runs every case of the row and reports
every case that fails (``reject_each``), which keeps the suite fast. Positive controls
(``accept_each``, ``*_is_accepted``) show the forging helpers make tokens the server
accepts, so a rejection is caused by the mutation and not by a broken helper.

Test names carry the checklist IDs (JWT-xx, KEY-xx, TERM-xx, RT-xx) and the attack row
(NONE, CONF, PSY, DER, MALL, KID, JKU, JWK, ALLOW, CRIT, DUP, TIME, AUD, TYP, FMT, JWE,
SIZE, NULLSIG, REPLAY).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.support.services import ORIGIN, PASSWORD
from tests.support.stores import BACKENDS
from tests.tokens.conftest import (
    INVALID_TOKEN_BODY,
    P256_ORDER,
    Case,
    Forger,
    ServiceFactory,
    accept_each,
    assert_core_rejected,
    assert_http_accepted,
    assert_http_rejected,
    assert_invalid_token_response,
    assert_rejected,
    b64url,
    bearer,
    decode_part,
    es256_raw,
    hmac_sign,
    http_client,
    make_forger,
    reject_each,
    segment,
    unb64url,
    without,
)
from velvetrope import AuthService, FrozenClock
from velvetrope.core.tokens import codec
from velvetrope.core.tokens.access import ACCESS_TYP
from velvetrope.core.tokens.codec import Jwk
from velvetrope.errors import InvalidGrant, InvalidToken

EMAIL = "eve@example.com"
COOKIE = "__Host-velvetrope-session"
N = P256_ORDER


@pytest.fixture
def backend() -> str:
    """The forging matrix never reaches the store, so it runs on memory only; tests whose
    outcome depends on stored state (revocation, rotation, key reloads) are marked
    ``EVERY_BACKEND`` and run once per backend."""
    return "memory"


EVERY_BACKEND = pytest.mark.parametrize("backend", BACKENDS)


@pytest.fixture
async def forger(service: AuthService, user_email: str) -> Forger:
    """A genuine EdDSA access token of ``user_email`` (the default algorithm), to mutate."""
    return await make_forger(service, user_email)


async def forger_on(service: AuthService) -> Forger:
    """Register a user on a service built by ``make_service`` and wrap a genuine token."""
    await service.register(EMAIL, PASSWORD)
    return await make_forger(service, EMAIL)


def raw_json(value: dict[str, Any], *, first: str = "", last: str = "") -> str:
    """Compact JSON of ``value`` with raw member text spliced in at the front or back.

    For what a dict cannot hold: duplicate members, NaN, 1e400, lone surrogates.
    """
    text = json.dumps(value, separators=(",", ":"))
    if first:
        text = "{" + first + ("," if len(text) > 2 else "") + text[1:]
    if last:
        text = text[:-1] + ("," if len(text) > 2 else "") + last + "}"
    return text


def hmac_token(forger: Forger, secret: bytes, alg: str = "HS256", **header: object) -> str:
    """The genuine claims under ``{alg: HSxxx}``, MACed with ``secret`` (key confusion)."""
    head = segment(forger.with_header(alg=alg, **header))
    body = segment(forger.claims)
    return f"{head}.{body}.{b64url(hmac_sign(secret, f'{head}.{body}'.encode(), alg))}"


# --- positive controls ---------------------------------------------------------------------


@EVERY_BACKEND
async def test_hand_signed_copy_of_a_genuine_token_is_accepted(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """The helpers reproduce a genuine token byte for byte; it passes both layers."""
    assert forger.token() == forger.genuine
    claims = await forger.service.tokens.access.verify(forger.token())
    assert claims.jti == forger.claims["jti"]
    me = await assert_http_accepted(client, forger.token())
    assert me["session"]["id"] == forger.claims["sid"]


async def test_hand_signed_token_with_changed_valid_claims_is_accepted(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """Re-signing changed (still valid) claims with the real key works: forging is sound."""
    token = forger.token(claims=forger.with_claims(jti="A" * 22, exp=forger.now + 60))
    assert token != forger.genuine
    await accept_each(forger.service, client, {"re-signed": token})


# --- NONE (JWT-01) ----------------------------------------------------------------------------

NONE_CASINGS = ["none", "None", "NONE", "nOnE", "noNE", "nonE"]


async def test_JWT_01_NONE_alg_none_in_any_case_is_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """Every casing; with and without ``kid``; ``h.p.`` and ``h.p``; and with a real-key
    signature attached (Wycheproof tcIds 16, 341-344; jwt_tool ``-X a``)."""
    cases: dict[str, Case] = {}
    for alg in NONE_CASINGS:
        for with_kid in (True, False):
            header = forger.with_header(alg=alg) if with_kid else {"alg": alg, "typ": ACCESS_TYP}
            unsigned = f"{segment(header)}.{segment(forger.claims)}"
            kid = "kid" if with_kid else "no-kid"
            cases[f"{alg}/{kid}/trailing-dot"] = (unsigned + ".", "not a compact JWS")
            cases[f"{alg}/{kid}/two-segments"] = (unsigned, "not a compact JWS")
            cases[f"{alg}/{kid}/signed"] = (forger.token(header=header), "alg not allowed")
    await reject_each(forger.service, client, cases)


# --- CONF: HMAC keyed with our own public key (JWT-02) ---------------------------------------


def _self_signed_cert(private: object) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "testserver")])
    public = private.public_key()  # type: ignore[attr-defined]
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(1)
        .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2027, 1, 1, tzinfo=UTC))
    )
    if isinstance(private, Ed25519PrivateKey):
        cert = builder.sign(private, None)
    else:
        assert isinstance(private, EllipticCurvePrivateKey | RSAPrivateKey)
        cert = builder.sign(private, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)


def public_key_encodings(service: AuthService) -> dict[str, bytes]:
    """Our public verification key in every encoding an attacker might use as an HMAC secret."""
    private: object = service.tokens.keys.signing_key.jwk.private_key
    assert isinstance(private, Ed25519PrivateKey | EllipticCurvePrivateKey | RSAPrivateKey)
    public = private.public_key()
    enc, fmt = serialization.Encoding, serialization.PublicFormat
    jwks = service.tokens.keys.jwks()
    [jwk] = jwks["keys"]
    pem = public.public_bytes(enc.PEM, fmt.SubjectPublicKeyInfo)
    found = {
        "spki-pem": pem,
        "spki-pem-without-newline": pem.rstrip(b"\n"),
        "spki-der": public.public_bytes(enc.DER, fmt.SubjectPublicKeyInfo),
        "openssh": public.public_bytes(enc.OpenSSH, fmt.OpenSSH),
        "jwk-compact": json.dumps(jwk, separators=(",", ":")).encode(),
        "jwk-default": json.dumps(jwk).encode(),
        "jwk-pretty": json.dumps(jwk, indent=2).encode(),
        "jwk-sorted": json.dumps(jwk, sort_keys=True).encode(),
        "jwks-document": json.dumps(jwks).encode(),
        "x509-cert-pem": _self_signed_cert(private),
    }
    if isinstance(public, ec.EllipticCurvePublicKey):
        found["x962-uncompressed"] = public.public_bytes(enc.X962, fmt.UncompressedPoint)
        found["x962-compressed"] = public.public_bytes(enc.X962, fmt.CompressedPoint)
    elif isinstance(private, Ed25519PrivateKey):
        found["raw"] = private.public_key().public_bytes(enc.Raw, fmt.Raw)
    else:
        found["pkcs1-pem"] = public.public_bytes(enc.PEM, fmt.PKCS1)
        found["pkcs1-der"] = public.public_bytes(enc.DER, fmt.PKCS1)
    return found


def _confusion_cases(forger: Forger) -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for name, secret in public_key_encodings(forger.service).items():
        for alg in ("HS256", "HS384", "HS512"):
            reason = "alg does not match the key" if alg == "HS256" else "alg not allowed"
            cases[f"{alg}/{name}"] = (hmac_token(forger, secret, alg), reason)
    return cases


async def test_JWT_02_CONF_hmac_keyed_with_our_eddsa_public_key_is_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """HS256/384/512 MACed with SPKI PEM (with and without newline), DER, OpenSSH, raw,
    JWK JSON (compact, default, pretty, sorted), the JWKS document, an X.509 cert."""
    cases = _confusion_cases(forger)
    assert len(cases) == 3 * 11
    await reject_each(forger.service, client, cases)


async def test_JWT_02_CONF_hmac_keyed_with_the_served_jwks_bytes_is_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """The exact bytes ``/.well-known/jwks.json`` serves, its one key, and its ``x``."""
    served = await client.get("/.well-known/jwks.json")
    assert served.status_code == 200
    [key] = served.json()["keys"]
    secrets = {
        "body": served.content,
        "key": json.dumps(key).encode(),
        "x": key["x"].encode(),
        "x-decoded": unb64url(key["x"]),
    }
    cases: dict[str, Case] = {
        name: (hmac_token(forger, secret), "alg does not match the key")
        for name, secret in secrets.items()
    }
    await reject_each(forger.service, client, cases)


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
async def test_JWT_02_CONF_hmac_keyed_with_our_ecdsa_or_rsa_public_key_is_rejected(
    make_service: ServiceFactory, alg: str
) -> None:
    """Also PKCS#1 (CVE-2017-11424) and X9.62 points (CVE-2022-29217 class)."""
    service = await make_service(algorithm=alg)
    forger = await forger_on(service)
    cases = _confusion_cases(forger)
    assert {"HS256/spki-pem", "HS256/openssh", "HS256/jwk-compact"} <= set(cases)
    assert ("HS256/pkcs1-pem" in cases) == (alg == "RS256")
    async with http_client(service) as client:
        await reject_each(service, client, cases)


# --- ALLOW: the allowlist is exact (JWT-01, JWT-02) ------------------------------------------

ALG_VARIANTS: list[tuple[object, str]] = [
    ("eddsa", "alg not allowed"),
    ("EDDSA", "alg not allowed"),
    ("EdDSA ", "alg not allowed"),
    (" EdDSA", "alg not allowed"),
    ("EdDSA\u0000", "alg not allowed"),
    ("Ed25519", "alg not allowed"),
    ("hs256", "alg not allowed"),
    ("HS256 ", "alg not allowed"),
    ("HS256\u0000", "alg not allowed"),
    ("HS256", "alg does not match the key"),
    ("ES256", "alg does not match the key"),
    ("RS256", "alg does not match the key"),
    ("PS256", "alg not allowed"),
    (["EdDSA"], "alg not allowed"),
    (["HS256"], "alg not allowed"),
    (None, "alg not allowed"),
    ("", "alg not allowed"),
    (1, "alg not allowed"),
    ({"alg": "EdDSA"}, "alg not allowed"),
    (True, "alg not allowed"),
]


async def test_JWT_01_ALLOW_alg_variants_signed_with_the_real_key_are_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """Only the exact, case-sensitive ``EdDSA`` bound to the key passes."""
    cases: dict[str, Case] = {
        repr(alg): (forger.token(header=forger.with_header(alg=alg)), reason)
        for alg, reason in ALG_VARIANTS
    }
    cases["missing"] = (forger.token(header=without(forger.header, "alg")), "alg not allowed")
    await reject_each(forger.service, client, cases)


def _attacker_signers(rsa_jwk: Jwk) -> dict[str, Callable[[bytes], bytes]]:
    """Signers for keys that are *not* the server's (the RSA key belongs to another ring)."""
    rsa_private: object = rsa_jwk.private_key
    assert isinstance(rsa_private, RSAPrivateKey)
    ec_private = ec.generate_private_key(ec.SECP256R1())
    ed_private = Ed25519PrivateKey.generate()
    return {
        "RS256": lambda m: rsa_private.sign(m, padding.PKCS1v15(), hashes.SHA256()),
        "ES256": lambda m: es256_raw(ec_private, m),
        "EdDSA": ed_private.sign,
        "HS256": lambda m: hmac_sign(b"k" * 32, m),
    }


@pytest.mark.parametrize("server_alg", ["ES256", "RS256", "HS256"])
async def test_JWT_02_ALLOW_another_supported_alg_for_our_kid_is_rejected(
    make_service: ServiceFactory, rsa_jwk: Jwk, server_alg: str
) -> None:
    """Each key is bound to one algorithm: e.g. ``RS256`` (signed by an attacker's RSA key)
    does not pass where only ``ES256`` is configured."""
    service = await make_service(algorithm=server_alg)
    forger = await forger_on(service)
    cases: dict[str, Case] = {}
    for token_alg, sign in _attacker_signers(rsa_jwk).items():
        if token_alg == server_alg:
            continue
        head = segment(forger.with_header(alg=token_alg))
        body = segment(forger.claims)
        token = f"{head}.{body}.{b64url(sign(f'{head}.{body}'.encode()))}"
        cases[token_alg] = (token, "alg does not match the key")
    assert len(cases) == 3
    async with http_client(service) as client:
        await assert_http_accepted(client, forger.genuine)
        await reject_each(service, client, cases)


async def test_ALLOW_other_ecdsa_algs_with_our_p256_key_are_rejected(
    make_service: ServiceFactory,
) -> None:
    service = await make_service(algorithm="ES256")
    forger = await forger_on(service)
    private: object = service.tokens.keys.signing_key.jwk.private_key
    assert isinstance(private, EllipticCurvePrivateKey)
    cases: dict[str, Case] = {}
    for alg, digest in (("ES384", hashes.SHA384()), ("ES512", hashes.SHA512())):
        head = segment(forger.with_header(alg=alg))
        body = segment(forger.claims)
        raw = es256_raw(private, f"{head}.{body}".encode())  # P-256 r||s over the wrong hash
        der = private.sign(f"{head}.{body}".encode(), ec.ECDSA(digest))
        cases[f"{alg}/raw"] = (f"{head}.{body}.{b64url(raw)}", "alg not allowed")
        cases[f"{alg}/der"] = (f"{head}.{body}.{b64url(der)}", "alg not allowed")
    async with http_client(service) as client:
        await reject_each(service, client, cases)


async def test_ALLOW_other_rsa_algs_with_our_rsa_key_are_rejected(
    make_service: ServiceFactory,
) -> None:
    service = await make_service(algorithm="RS256")
    forger = await forger_on(service)
    private: object = service.tokens.keys.signing_key.jwk.private_key
    assert isinstance(private, RSAPrivateKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    schemes: dict[str, tuple[Any, Any]] = {
        "PS256": (pss, hashes.SHA256()),
        "RS384": (padding.PKCS1v15(), hashes.SHA384()),
        "RS512": (padding.PKCS1v15(), hashes.SHA512()),
    }
    cases: dict[str, Case] = {}
    for alg, (pad, digest) in schemes.items():
        head = segment(forger.with_header(alg=alg))
        body = segment(forger.claims)
        signature = private.sign(f"{head}.{body}".encode(), pad, digest)
        cases[alg] = (f"{head}.{body}.{b64url(signature)}", "alg not allowed")
    async with http_client(service) as client:
        await assert_http_accepted(client, forger.genuine)
        await reject_each(service, client, cases)


# --- PSY and DER: ECDSA signature encoding (JWT-16) ------------------------------------------


@pytest.fixture
async def es256_forger(make_service: ServiceFactory) -> Forger:
    return await forger_on(await make_service(algorithm="ES256"))


def _split_es256(token: str) -> tuple[int, int]:
    raw = unb64url(token.split(".")[2])
    assert len(raw) == 64
    return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")


async def test_JWT_16_PSY_psychic_and_out_of_range_es256_signatures_are_rejected(
    es256_forger: Forger,
) -> None:
    """CVE-2022-21449 class and Wycheproof ``SpecialCaseEs256``: r, s in {0, 1, n-1, n,
    n+1, 2^256-1} and the genuine r/s paired with 0, n or themselves + n."""
    r0, s0 = _split_es256(es256_forger.genuine)
    values = {
        "0": 0,
        "1": 1,
        "n-1": N - 1,
        "n": N,
        "n+1": N + 1,
        "2^256-1": 2**256 - 1,
        "r": r0,
        "s": s0,
        "r+n": r0 + N,
        "s+n": s0 + N,
    }
    pairs = [
        ("0", "0"),
        ("0", "1"),
        ("1", "0"),
        ("1", "1"),
        ("0", "n-1"),
        ("n-1", "0"),
        ("n-1", "n-1"),
        ("n", "n"),
        ("0", "n"),
        ("n", "0"),
        ("1", "n"),
        ("n", "1"),
        ("n-1", "n"),
        ("n+1", "n+1"),
        ("2^256-1", "2^256-1"),
        ("r", "0"),
        ("0", "s"),
        ("r", "n"),
        ("n", "s"),
        ("r", "s+n"),
        ("r+n", "s"),
    ]
    cases: dict[str, Case] = {}
    for r_name, s_name in pairs:
        r, s = values[r_name], values[s_name]
        width = 33 if max(r, s) >= 2**256 else 32
        signature = r.to_bytes(width, "big") + s.to_bytes(width, "big")
        cases[f"r={r_name},s={s_name}"] = (es256_forger.token(signature=signature), "signature")
    async with http_client(es256_forger.service) as client:
        await assert_http_accepted(client, es256_forger.genuine)
        await reject_each(es256_forger.service, client, cases)


async def test_JWT_16_DER_and_misshapen_es256_signatures_are_rejected(
    es256_forger: Forger,
) -> None:
    """Only raw ``r || s`` of exactly 64 bytes: a DER signature of the same (r, s) fails."""
    r, s = _split_es256(es256_forger.genuine)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    shapes = {
        "der": encode_dss_signature(r, s),
        "trailing-zero": raw + b"\x00",
        "leading-zero": b"\x00" + raw,
        "truncated": raw[:-1],
        "r-only": raw[:32],
        "doubled": raw + raw,
        "padded-halves": b"\x00" + raw[:32] + b"\x00" + raw[32:],
        "swapped-halves": raw[32:] + raw[:32],
    }
    cases: dict[str, Case] = {
        name: (es256_forger.token(signature=sig), None) for name, sig in shapes.items()
    }
    async with http_client(es256_forger.service) as client:
        await reject_each(es256_forger.service, client, cases)


# --- MALL: the high-S twin and the denylist (TERM-02) ----------------------------------------


def high_s_twin(token: str) -> str:
    """The same token with s replaced by n - s: a second valid signature (ECDSA malleability)."""
    r, s = _split_es256(token)
    head, body, _ = token.split(".")
    return f"{head}.{body}.{b64url(r.to_bytes(32, 'big') + (N - s).to_bytes(32, 'big'))}"


async def test_MALL_high_s_twin_is_a_different_string_that_verifies(es256_forger: Forger) -> None:
    """Why the denylist must not be keyed by token string or hash: the twin is valid too."""
    twin = high_s_twin(es256_forger.genuine)
    assert twin != es256_forger.genuine
    claims = await es256_forger.service.tokens.access.verify(twin)
    assert claims.jti == es256_forger.claims["jti"]


@EVERY_BACKEND
@pytest.mark.parametrize("how", ["revoke-endpoint", "logout", "core-revoke"])
async def test_TERM_02_MALL_high_s_twin_is_rejected_once_the_original_is_revoked(
    es256_forger: Forger, how: str
) -> None:
    service, original = es256_forger.service, es256_forger.genuine
    twin = high_s_twin(original)
    async with http_client(service) as client:
        await assert_http_accepted(client, original)
        await assert_http_accepted(client, twin)  # and it is in the verified-token cache now
        if how == "revoke-endpoint":
            revoked = await client.post("/auth/revoke", data={"token": original})
            assert revoked.status_code == 200, revoked.text
        elif how == "logout":
            out = await client.post("/auth/logout", headers=bearer(original))
            assert out.status_code == 204, out.text
        else:
            await service.tokens.revoke_token(original)
        await reject_each(
            service, client, {"original": (original, "revoked"), "twin": (twin, "revoked")}
        )


@EVERY_BACKEND
async def test_TERM_02_revoking_the_twin_also_kills_the_original(es256_forger: Forger) -> None:
    service, original = es256_forger.service, es256_forger.genuine
    twin = high_s_twin(original)
    async with http_client(service) as client:
        revoked = await client.post("/auth/revoke", data={"token": twin})
        assert revoked.status_code == 200, revoked.text
        await assert_rejected(service, client, original, "revoked")


# --- KID (JWT-04) ------------------------------------------------------------------------------

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


@EVERY_BACKEND
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


@EVERY_BACKEND
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


# --- JKU / X5U / JWK / X5C: key material named in the token (JWT-03) -------------------------


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
    cert = x509.load_pem_x509_certificate(_self_signed_cert(private))
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


# --- CRIT (JWT-07) and JWE headers on a JWS (JWT-06) -----------------------------------------

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
    """A zip bomb in the ciphertext and p2c = 2^31 - 1: all refused in well under a second."""
    bomb = b64url(zlib.compress(b"\x00" * (1 << 20), 9))
    cases: dict[str, Case] = {}
    for jwe in JWE_HEADERS:
        header = segment({**jwe, "kid": forger.kid, "typ": ACCESS_TYP})
        for cek_name, cek in (("empty-cek", ""), ("cek", b64url(b"\x01" * 32))):
            parts = [header, cek, b64url(b"\x02" * 12), bomb, b64url(b"\x03" * 16)]
            cases[f"{jwe['alg']}/{cek_name}"] = (".".join(parts), "not a compact JWS")
    started = time.perf_counter()
    await reject_each(forger.service, client, cases)
    assert time.perf_counter() - started < 0.1 * len(cases)


# --- DUP and JSON parser differentials (JWT-08, JWT-20) ---------------------------------------


async def test_JWT_08_DUP_duplicate_members_are_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """Properly signed with the real key; only the duplicate member is wrong. PyJWT and
    joserfc both accept these by default (last wins)."""
    claims, header = forger.claims, forger.header
    far = forger.now + 600
    raw: dict[str, tuple[str | None, str | None]] = {
        "exp-expired-last": (None, raw_json(claims, last='"exp":1')),
        "exp-expired-first": (None, raw_json(claims, first='"exp":1')),
        "exp-far-last": (None, raw_json(claims, last=f'"exp":{far}')),
        "exp-same-twice": (None, raw_json(claims, last=f'"exp":{claims["exp"]}')),
        "sub-admin-last": (None, raw_json(claims, last='"sub":"admin"')),
        "sub-admin-first": (None, raw_json(claims, first='"sub":"admin"')),
        "sub-same-twice": (None, raw_json(claims, last=json.dumps({"sub": claims["sub"]})[1:-1])),
        "jti-twice": (None, raw_json(claims, last='"jti":"BBBBBBBBBBBBBBBBBBBBBB"')),
        "aud-twice": (None, raw_json(claims, last='"aud":"https://evil.example"')),
        "iss-twice": (None, raw_json(claims, first='"iss":"https://evil.example"')),
        "nested-object": (None, raw_json(claims, last='"x":{"a":1,"a":2}')),
        "alg-none-first": (raw_json(header, first='"alg":"none"'), None),
        "alg-none-last": (raw_json(header, last='"alg":"none"'), None),
        "alg-same-twice": (raw_json(header, last='"alg":"EdDSA"'), None),
        "kid-twice": (raw_json(header, first='"kid":"unknown"'), None),
        "typ-twice": (raw_json(header, last='"typ":"JWT"'), None),
    }
    cases: dict[str, Case] = {
        name: (forger.token(header=h, claims=c), "duplicate JSON member")
        for name, (h, c) in raw.items()
    }
    await reject_each(forger.service, client, cases)


async def test_JWT_08_JWT_20_odd_json_is_rejected_not_500(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """BOM, UTF-16/32, invalid UTF-8, NaN/Infinity members, 3000-deep nesting (a
    RecursionError in ``json``), non-object JSON, trailing garbage."""
    header_text = json.dumps(forger.header)
    claims_text = json.dumps(forger.claims)
    deep = "[" * 3000 + "]" * 3000
    raw: dict[str, tuple[bytes | str | None, bytes | str | None]] = {
        "header-bom": ("\ufeff" + header_text, None),
        "claims-bom": (None, "\ufeff" + claims_text),
        "header-utf16": (header_text.encode("utf-16"), None),
        "claims-utf16": (None, claims_text.encode("utf-16")),
        "claims-utf32": (None, claims_text.encode("utf-32")),
        "claims-invalid-utf8": (None, claims_text.encode()[:-1] + b"\xff}"),
        "header-latin1": (raw_json(forger.header, last='"x":"\u00ff"').encode("latin-1"), None),
        "claims-nan-member": (None, raw_json(forger.claims, last='"x":NaN')),
        "header-infinity": (raw_json(forger.header, last='"x":Infinity'), None),
        "claims-deep-nesting": (None, raw_json(forger.claims, last=f'"x":{deep}')),
        "header-array": ("[]", None),
        "header-null": ("null", None),
        "header-string": ('"EdDSA"', None),
        "header-number": ("1", None),
        "header-empty-object": ("{}", None),
        "claims-array": (None, json.dumps([forger.claims])),
        "claims-null": (None, "null"),
        "claims-string": (None, json.dumps(claims_text)),
        "claims-empty-object": (None, "{}"),
        "claims-trailing-garbage": (None, claims_text + "x"),
        "claims-two-objects": (None, claims_text + claims_text),
        "claims-single-quotes": (None, claims_text.replace('"', "'")),
    }
    cases: dict[str, Case] = {
        name: (forger.token(header=h, claims=c), None) for name, (h, c) in raw.items()
    }
    cases["header-empty"] = (f".{forger.genuine.split('.', 1)[1]}", "not a compact JWS")
    await reject_each(forger.service, client, cases)


async def test_JWT_20_lone_surrogate_in_a_text_claim_is_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """``"\\ud800"`` parses to a str that cannot be UTF-8 encoded."""
    cases: dict[str, Case] = {}
    for name in ("sub", "sid", "jti", "client_id", "iss"):
        claims = raw_json(without(forger.claims, name), last=f'"{name}":"\\ud800abc"')
        cases[name] = (forger.token(claims=claims), None)
    await reject_each(forger.service, client, cases)


# --- TIME (JWT-09, JWT-10) -------------------------------------------------------------------

BAD_NUMERIC_DATES: dict[str, str] = {
    "string": '"9999999999"',
    "string-float": '"1e10"',
    "true": "true",
    "false": "false",
    "null": "null",
    "list": "[9999999999]",
    "object": '{"$date":9999999999}',
    "empty-string": '""',
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "1e400": "1e400",
    "-1e400": "-1e400",
    "-1": "-1",
    "2^40": str(2**40),
    "2^63": str(2**63),
    "2^64": str(2**64),
    "1e308": "1e308",
}


async def test_JWT_09_TIME_numeric_dates_must_be_finite_json_numbers(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """``"exp":"9999999999"`` (PyJWT accepts it), booleans, NaN, 1e400: refused in exp,
    nbf and iat; and a missing exp, nbf or iat is refused too."""
    cases: dict[str, Case] = {}
    for claim in ("exp", "nbf", "iat"):
        for label, raw in BAD_NUMERIC_DATES.items():
            claims = raw_json(without(forger.claims, claim), last=f'"{claim}":{raw}')
            cases[f"{claim}={label}"] = (forger.token(claims=claims), None)
        cases[f"{claim}-missing"] = (
            forger.token(claims=without(forger.claims, claim)),
            f"{claim} is not a number",
        )
    await reject_each(forger.service, client, cases)


async def test_JWT_09_JWT_20_huge_integer_numeric_date_is_401_not_500(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """A 401-digit JSON integer is a valid Python int that ``math.isfinite`` cannot take
    (OverflowError in ``claims._numeric_date``): it must be ``InvalidToken``/401, never an
    unhandled exception/500."""
    cases: dict[str, Case] = {}
    for claim in ("exp", "nbf", "iat"):
        for digits in (310, 400, 4000):
            claims = raw_json(without(forger.claims, claim), last=f'"{claim}":1{"0" * digits}')
            cases[f"{claim}=10^{digits}"] = (forger.token(claims=claims), None)
    await reject_each(forger.service, client, cases)


async def test_JWT_10_TIME_boundaries_with_the_default_30s_leeway(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """Offsets are seconds from the frozen ``now``; the leeway applies to exp, nbf, iat."""
    now = forger.now

    def token(**offsets: float) -> str:
        changes = {k: now + v for k, v in offsets.items()}
        return forger.token(claims=forger.with_claims(**changes, jti="T" * 22))

    await reject_each(
        forger.service,
        client,
        {
            "exp=now-30 (now >= exp + leeway)": (token(exp=-30), "expired"),
            "exp=now-31": (token(exp=-31), "expired"),
            "exp=now-1h": (token(exp=-3600, iat=-4000, nbf=-4000), "expired"),
            "nbf=now+31": (token(nbf=31), "not yet valid"),
            "iat=now+31": (token(iat=31), "issued in the future"),
            "iat=now+1y": (token(iat=86400 * 365, nbf=0), "issued in the future"),
        },
    )
    await accept_each(
        forger.service,
        client,
        {
            "exp=now-29": token(exp=-29),
            "exp=now": token(exp=0),
            "exp=now+0.5 (float)": token(exp=0.5),
            "nbf=now+30": token(nbf=30),
            "iat=now+30": token(iat=30),
        },
    )


async def test_JWT_10_TIME_boundaries_with_zero_leeway(make_service: ServiceFactory) -> None:
    """With no leeway: ``exp = now`` is expired, ``nbf``/``iat`` one second ahead refused."""
    service = await make_service(leeway=timedelta(0))
    forger = await forger_on(service)
    now = forger.now

    def token(**offsets: int) -> str:
        return forger.token(claims=forger.with_claims(**{k: now + v for k, v in offsets.items()}))

    async with http_client(service) as client:
        await reject_each(
            service,
            client,
            {
                "exp=now": (token(exp=0), "expired"),
                "nbf=now+1": (token(nbf=1), "not yet valid"),
                "iat=now+1": (token(iat=1), "issued in the future"),
            },
        )
        await accept_each(
            service, client, {"exp=now+1": token(exp=1), "nbf=now": token(nbf=0, iat=0)}
        )


async def test_JWT_09_TIME_cached_token_expires_on_time(
    forger: Forger, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """The verified-token cache does not outlive ``exp`` + leeway."""
    await assert_http_accepted(client, forger.genuine)
    clock.advance(timedelta(seconds=forger.claims["exp"] - forger.now + 29))
    await assert_http_accepted(client, forger.genuine)
    clock.advance(timedelta(seconds=1))
    await assert_rejected(forger.service, client, forger.genuine, "expired")


# --- AUD and ISS (JWT-11, JWT-12) ------------------------------------------------------------

BAD_AUDIENCES: list[object] = [
    "https://testserve",
    "https://testserver.evil",
    "HTTPS://TESTSERVER",
    "https://TestServer",
    "https://testserver/",
    "https://testserver:443",
    " https://testserver",
    "https://testserver ",
    "https://testserver\u0000",
    "https://evil.example/https://testserver",
    "testserver",
    "",
    ["https://testserve"],
    ["HTTPS://TESTSERVER"],
    list("https://testserver"),
    [1],
    ["https://testserver", 1],
    ["https://testserver", None],
    [["https://testserver"]],
    [],
    None,
    1,
    True,
    {"https://testserver": True},
]


async def test_JWT_11_AUD_wrong_audience_is_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """Exact, case-sensitive, whole string; lists only of strings; no substring matches."""
    cases: dict[str, Case] = {
        repr(aud)[:60]: (forger.token(claims=forger.with_claims(aud=aud)), "wrong aud")
        for aud in BAD_AUDIENCES
    }
    cases["missing"] = (forger.token(claims=without(forger.claims, "aud")), "wrong aud")
    await reject_each(forger.service, client, cases)


async def test_JWT_11_AUD_list_containing_our_audience_is_accepted(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """RFC 7519 §4.1.3: an array of strings that contains ours."""
    lists = {
        "[ours]": [ORIGIN],
        "[other, ours]": ["https://other.example", ORIGIN],
        "[ours, ours]": [ORIGIN, ORIGIN],
    }
    tokens = {name: forger.token(claims=forger.with_claims(aud=aud)) for name, aud in lists.items()}
    await accept_each(forger.service, client, tokens)


BAD_ISSUERS: list[object] = [
    "https://testserve",
    "https://testserver.evil",
    "HTTPS://TESTSERVER",
    "https://testserver/",
    "https://testserver:443",
    "http://testserver",
    " https://testserver",
    "https://testserver\u0000",
    "https://evil.example/https://testserver",
    "urn:velvetrope",
    "",
    [ORIGIN],
    None,
    1,
    {"iss": ORIGIN},
]


async def test_JWT_12_ISS_wrong_issuer_is_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """Exact comparison only: no prefix, substring, case folding or list (CVE-2024-53861)."""
    cases: dict[str, Case] = {
        repr(iss)[:60]: (forger.token(claims=forger.with_claims(iss=iss)), None)
        for iss in BAD_ISSUERS
    }
    cases["missing"] = (forger.token(claims=without(forger.claims, "iss")), "iss is not a string")
    await reject_each(forger.service, client, cases)


# --- sub, sid, jti, client_id (JWT-14, JWT-15) -----------------------------------------------


async def test_JWT_14_JWT_15_identity_claims_must_be_non_empty_strings(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    cases: dict[str, Case] = {}
    for name in ("sub", "sid", "jti", "client_id"):
        for value in (None, 1, "", ["x"], {"id": "x"}, True, "x" * 257):
            token = forger.token(claims=forger.with_claims(**{name: value}))
            cases[f"{name}={value!r:.20}"] = (token, None)
        cases[f"{name}-missing"] = (forger.token(claims=without(forger.claims, name)), None)
    for jti in ("short", "A" * 21, "A" * 129, "has space AAAAAAAAAAAAAAAAA", "A+" * 11):
        cases[f"jti={jti[:20]}"] = (forger.token(claims=forger.with_claims(jti=jti)), "bad jti")
    await reject_each(forger.service, client, cases)


@EVERY_BACKEND
async def test_JWT_14_TERM_04_token_of_a_disabled_user_is_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """Disabling the account ends its tokens on the very next request, on every route."""
    await assert_http_accepted(client, forger.genuine)
    await forger.service.disable_user(forger.claims["sub"])
    await assert_rejected(forger.service, client, forger.genuine, "revoked")
    sessions = await client.get("/auth/sessions", headers=bearer(forger.genuine))
    assert_invalid_token_response(sessions, forger.genuine)


# --- TYP (JWT-13) ---------------------------------------------------------------------------

BAD_TYPS: list[object] = [
    "JWT",
    "jwt",
    "rt+jwt",
    "id+jwt",
    "at+jwt ",
    " at+jwt",
    "at+jwt\u0000",
    "at-jwt",
    "atjwt",
    "JOSE",
    "",
    None,
    1,
    ["at+jwt"],
    # RFC 9068 §4 would also allow the full media type; velvetrope only ever issues
    # "at+jwt" and accepts exactly that, case-insensitively (documented, stricter).
    "application/at+jwt",
]


async def test_JWT_13_TYP_other_token_types_are_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    cases: dict[str, Case] = {
        repr(typ): (forger.token(header=forger.with_header(typ=typ)), "wrong typ")
        for typ in BAD_TYPS
    }
    cases["missing"] = (forger.token(header=without(forger.header, "typ")), "wrong typ")
    await reject_each(forger.service, client, cases)


async def test_JWT_13_TYP_is_compared_case_insensitively(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """RFC 7515 §4.1.9: ``typ`` values are compared case-insensitively; the codec lowercases
    both sides, so these (signed with the real key) are accepted. Documented behaviour."""
    tokens = {
        typ: forger.token(header=forger.with_header(typ=typ))
        for typ in ("at+JWT", "AT+JWT", "At+Jwt")
    }
    await accept_each(forger.service, client, tokens)


async def test_JWT_13_refresh_token_is_not_a_bearer_token(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    await assert_rejected(forger.service, client, forger.refresh_token, "not a compact JWS")


@EVERY_BACKEND
async def test_JWT_13_access_token_is_not_a_refresh_token(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    with pytest.raises(InvalidGrant):
        await forger.service.tokens.refresh_grant(forger.genuine)
    response = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": forger.genuine}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"
    await assert_http_accepted(client, forger.genuine)  # and it did not revoke anything


# --- FMT (JWT-05) ----------------------------------------------------------------------------


async def test_JWT_05_FMT_only_compact_serialization_is_accepted(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """Wycheproof tcId 17 (JSON serialization), extra/missing segments, padding,
    whitespace, ``?``/``#``/``%2E``. Core: ``not a compact JWS``; HTTP: 401 either from
    the Authorization parser or the verifier."""
    token = forger.genuine
    h, p, s = token.split(".")
    flattened = {"protected": h, "payload": p, "signature": s}
    general = {"payload": p, "signatures": [{"protected": h, "signature": s}]}
    with_header = {"payload": p, "signatures": [{"protected": h, "header": {}, "signature": s}]}
    variants = {
        "json-flattened": json.dumps(flattened),
        "json-general": json.dumps(general),
        "json-general-with-header": json.dumps(with_header),
        "two-segments": f"{h}.{p}",
        "four-segments": f"{h}.{p}.{s}.{s}",
        "five-segments": f"{h}.{p}.{s}.{h}.{p}",
        "trailing-dot": f"{token}.",
        "leading-dot": f".{token}",
        "empty-payload": f"{h}..{s}",
        "double-dot": f"{h}..{p}.{s}",
        "pad-header": f"{h}=.{p}.{s}",
        "pad-payload": f"{h}.{p}==.{s}",
        "pad-signature": f"{token}=",
        "pad-signature-2": f"{token}==",
        "leading-space": f" {token}",
        "trailing-space": f"{token} ",
        "inner-space": f"{h}. {p}.{s}",
        "inner-tab": f"{h}.{p}\t.{s}",
        "question-mark": f"{h}.{p}.?{s}",
        "hash": f"{h}#.{p}.{s}",
        "percent-encoded-dots": f"{h}%2E{p}%2E{s}",
        "standard-base64-padding": f"{h}.{p}.{base64.b64encode(unb64url(s)).decode()}",
        "quoted": f'"{token}"',
        "bearer-prefix-inside": f"Bearer {token}",
    }
    cases: dict[str, Case] = {name: (v, "not a compact JWS") for name, v in variants.items()}
    await reject_each(forger.service, client, cases)
    for odd in (f"{token}\n", f"{token}\u0000", f"{h}.{p}\r\n.{s}"):  # not sendable over HTTP
        await assert_core_rejected(forger.service, odd, "not a compact JWS")


def _token_with_url_alphabet(forger: Forger) -> str:
    """A valid token that contains ``-`` or ``_`` (EdDSA is deterministic: vary the jti)."""
    for i in range(1000):
        token = forger.token(claims=forger.with_claims(jti=f"J{i:021d}"))
        if "-" in token or "_" in token:
            return token
    raise AssertionError("no token with - or _ in 1000 tries")  # pragma: no cover


def _noncanonical(text: str) -> str:
    """Flip an unused low bit of the last character: decodes to the same bytes."""
    assert len(text) % 4 in (2, 3), "no unused bits in a full quantum"
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    changed = text[:-1] + alphabet[alphabet.index(text[-1]) ^ 1]
    assert unb64url(changed) == unb64url(text)
    return changed


async def test_JWT_05_FMT_non_url_alphabet_and_non_canonical_base64_are_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """``+``/``/`` instead of ``-``/``_``; non-canonical last characters (same bytes, other
    text: a parser-malleability twin) in the signature, and in the payload re-signed over
    the non-canonical text so only the encoding is wrong; a length of 1 mod 4."""
    url_token = _token_with_url_alphabet(forger)
    await accept_each(forger.service, client, {"url-alphabet control": url_token})
    h, p, s = forger.genuine.split(".")
    for jti_length in range(22, 26):
        padded_claims = forger.with_claims(jti="C" * jti_length)
        if len(segment(padded_claims)) % 4 in (2, 3):
            break
    body = _noncanonical(segment(padded_claims))
    resigned = f"{h}.{body}.{b64url(forger.sign(f'{h}.{body}'.encode()))}"
    cases: dict[str, Case] = {
        "standard-alphabet": (url_token.translate(str.maketrans("-_", "+/")), "not a compact JWS"),
        "non-canonical-signature": (f"{h}.{p}.{_noncanonical(s)}", "non-canonical base64url"),
        "non-canonical-payload": (resigned, "non-canonical base64url"),
        "length-1-mod-4": (f"{h}.{p}.{s}{'A' * ((1 - len(s)) % 4 or 4)}", None),
    }
    assert len(cases["length-1-mod-4"][0].split(".")[2]) % 4 == 1
    await reject_each(forger.service, client, cases)


# --- NULLSIG ---------------------------------------------------------------------------------


async def test_NULLSIG_missing_truncated_or_wrong_signature_is_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """jwt_tool ``-X n`` and "broken signature"; also the genuine signature over edited
    claims (privilege escalation by editing the payload only)."""
    genuine_sig = forger.genuine.split(".")[2]
    sig = unb64url(genuine_sig)
    other = forger.token(claims=forger.with_claims(jti="O" * 22)).split(".")[2]
    signatures: dict[str, bytes | str] = {
        "empty": "",
        "zeros": b"\x00" * len(sig),
        "ones": b"\xff" * len(sig),
        "truncated-4-chars": genuine_sig[:-4],
        "one-byte": b"\x00",
        "first-byte-flipped": bytes([sig[0] ^ 1]) + sig[1:],
        "last-byte-flipped": sig[:-1] + bytes([sig[-1] ^ 1]),
        "doubled": sig + sig,
        "other-token": other,
        "hmac-of-empty-key": hmac_sign(b"", forger.signing_input(forger.genuine)),
    }
    cases: dict[str, Case] = {
        name: (forger.token(signature=value), None) for name, value in signatures.items()
    }
    for name, changes in (
        ("sub", {"sub": "admin"}),
        ("exp", {"exp": forger.now + 10**6}),
        ("sid", {"sid": "other"}),
    ):
        edited = f"{segment(forger.header)}.{segment(forger.with_claims(**changes))}.{genuine_sig}"
        cases[f"edited-{name}"] = (edited, "signature")
    await reject_each(forger.service, client, cases)


# --- SIZE (JWT-17, OPS-03) -------------------------------------------------------------------


@pytest.mark.parametrize("size", [8193, 100 * 1024, 1024 * 1024], ids=["8KiB+1", "100KiB", "1MiB"])
async def test_JWT_17_SIZE_oversized_bearer_tokens_are_rejected_quickly(
    forger: Forger, client: httpx.AsyncClient, size: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused before any decoding, and the token never reaches a log line."""
    third = size // 3
    token = f"{'A' * third}.{'B' * third}.{'C' * (size - 2 * third - 2)}"
    assert len(token) == size
    caplog.set_level(logging.DEBUG)
    started = time.perf_counter()
    await assert_core_rejected(forger.service, token, "too large")
    await assert_http_rejected(client, token)
    assert time.perf_counter() - started < 1.0
    assert "AAAAAAAA" not in caplog.text


async def test_JWT_17_SIZE_segment_caps_and_large_valid_tokens(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """Header and signature segments have their own caps below the token cap; up to the
    cap, size alone is not a reason (a ~7 KB valid token is accepted)."""
    big_header = forger.token(header=forger.with_header(pad="x" * 800))
    big_signature = forger.token(signature=b"\x00" * 800)
    assert max(len(big_header), len(big_signature)) < 8192
    await reject_each(
        forger.service,
        client,
        {
            "header": (big_header, "segment too large"),
            "signature": (big_signature, "segment too large"),
        },
    )
    large = forger.token(claims=forger.with_claims(pad="p" * 5000))
    assert 6000 < len(large) <= 8192
    await accept_each(forger.service, client, {"7KB": large})


@pytest.mark.parametrize("size", [100 * 1024, 1024 * 1024], ids=["100KiB", "1MiB"])
async def test_OPS_03_SIZE_oversized_token_in_a_cookie_is_431(
    client: httpx.AsyncClient, size: int
) -> None:
    started = time.perf_counter()
    response = await client.get("/auth/me", headers={"Cookie": f"{COOKIE}={'A' * size}"})
    assert time.perf_counter() - started < 1.0
    assert response.status_code == 431, response.text
    assert response.json()["error"] == "header_too_large"
    assert "AAAAAAAA" not in response.text


# --- where a bearer token may come from (JWT-18) and malformed headers ------------------------


async def test_JWT_18_access_token_in_the_query_string_is_ignored(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    response = await client.get("/auth/me", params={"access_token": forger.genuine})
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "not_authenticated"
    assert forger.genuine not in response.text


async def test_JWT_18_access_token_in_a_form_body_is_ignored(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """RFC 6750 §2.2 form-encoded bodies are not a way in: ``logout-all`` must 401 and
    must not have signed anyone out."""
    response = await client.post("/auth/logout-all", data={"access_token": forger.genuine})
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "not_authenticated"
    await assert_http_accepted(client, forger.genuine)


async def test_JWT_18_access_token_elsewhere_is_not_a_credential(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    placements = {
        "cookie access_token": {"Cookie": "access_token=TOKEN"},
        "session cookie": {"Cookie": f"{COOKIE}=TOKEN"},
        "X-Access-Token": {"X-Access-Token": "TOKEN"},
        "X-Authorization": {"X-Authorization": "Bearer TOKEN"},
        "Proxy-Authorization": {"Proxy-Authorization": "Bearer TOKEN"},
        "scheme Token": {"Authorization": "Token TOKEN"},
        "scheme JWT": {"Authorization": "JWT TOKEN"},
        "no scheme": {"Authorization": "TOKEN"},
    }
    failures = []
    for name, headers in placements.items():
        sent = {k: v.replace("TOKEN", forger.genuine) for k, v in headers.items()}
        response = await client.get("/auth/me", headers=sent)
        error = response.json().get("error")
        if response.status_code != 401 or error not in {"not_authenticated", "session_invalid"}:
            failures.append(f"{name}: {response.status_code} {response.text}")
        if forger.genuine in response.text:
            failures.append(f"{name}: token echoed")
    assert not failures, failures


MALFORMED_AUTHORIZATION = [
    "Bearer",
    "Bearer ",
    "Bearer  TOKEN",
    "bearer TOKEN TOKEN",
    "Bearer TOKEN TOKEN",
    "Bearer\tTOKEN",
    "Bearer TOKEN,",
    "Bearer TOKEN;",
    "Bearer=TOKEN",
    "BearerTOKEN",
    "Bearer:TOKEN",
    'Bearer "TOKEN"',
    "Bearer TOKEN, Bearer TOKEN",
    "Bearer {TOKEN}",
    "Bearer =TOKEN",
]


async def test_JWT_19_malformed_bearer_authorization_headers_are_invalid_token(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    failures = []
    for value in MALFORMED_AUTHORIZATION:
        header = value.replace("TOKEN", forger.genuine)
        response = await client.get("/auth/me", headers={"Authorization": header})
        try:
            assert_invalid_token_response(response, forger.genuine)
        except AssertionError as exc:
            failures.append(f"{value!r}: {exc}")
    assert not failures, "\n".join(failures)


async def test_bearer_scheme_name_is_case_insensitive(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """RFC 9110 §11.1: the auth scheme is case-insensitive (positive control)."""
    for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
        response = await client.get(
            "/auth/me", headers={"Authorization": f"{scheme} {forger.genuine}"}
        )
        assert response.status_code == 200, (scheme, response.text)


FUZZ = hypothesis_settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

B64URL_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
TOKENISH = st.text(alphabet=B64URL_CHARS + ".=+/~ ", max_size=200)
HEADER_VALUES = (
    st.binary(max_size=300)
    | TOKENISH.map(lambda t: f"Bearer {t}".encode())
    | st.text(max_size=120).map(lambda t: f"Bearer {t}".encode())
)


@FUZZ
@given(value=HEADER_VALUES)
async def test_JWT_20_random_authorization_headers_never_5xx(
    client: httpx.AsyncClient, value: bytes
) -> None:
    response = await client.get("/auth/me", headers=[(b"authorization", value)])
    assert response.status_code == 401, response.text
    assert response.json()["error"] in {"invalid_token", "not_authenticated"}


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
HEADER_KEYS = st.sampled_from(["alg", "kid", "typ", "crit", "jku", "jwk", "x5c", "b64", "enc"])


@FUZZ
@given(
    header=st.dictionaries(HEADER_KEYS, JSON_VALUES, max_size=5),
    claims=st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=5),
    signature=st.binary(max_size=100),
    keep_real_header=st.booleans(),
)
async def test_JWT_20_structured_garbage_tokens_are_401_never_5xx(  # noqa: PLR0917 - fixtures
    forger: Forger,
    client: httpx.AsyncClient,
    header: dict[str, Any],
    claims: dict[str, Any],
    signature: bytes,
    keep_real_header: bool,
) -> None:
    """Well-formed compact tokens with random JSON and no valid signature: always 401."""
    head = {**forger.header, **header} if keep_real_header else header
    token = forger.token(header=head, claims={**forger.claims, **claims}, signature=signature)
    response = await client.get("/auth/me", headers=bearer(token))
    assert_invalid_token_response(response)


# --- issuance: KEY-01, KEY-02, KEY-05 ---------------------------------------------------------


def test_KEY_01_generated_hmac_keys_are_at_least_32_random_bytes() -> None:
    secrets = [codec.generate_jwk("HS256").private_key for _ in range(3)]
    assert all(isinstance(s, bytes) and len(s) >= 32 for s in secrets)
    assert len(set(secrets)) == 3


async def test_KEY_01_hs256_service_signs_with_32_bytes_and_publishes_nothing(
    make_service: ServiceFactory,
) -> None:
    service = await make_service(algorithm="HS256")
    secret = service.tokens.keys.signing_key.jwk.private_key
    assert isinstance(secret, bytes)
    assert len(secret) >= 32
    assert service.tokens.keys.jwks() == {"keys": []}
    async with http_client(service) as client:
        served = await client.get("/.well-known/jwks.json")
        assert served.json() == {"keys": []}
        assert b64url(secret) not in served.text


def test_KEY_02_generated_rsa_keys_are_3072_bits(rsa_jwk: Jwk) -> None:
    private: object = rsa_jwk.private_key
    assert isinstance(private, RSAPrivateKey)
    assert private.key_size == 3072
    assert private.public_key().public_numbers().e == 65537


EXPECTED_CLAIMS = {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "client_id"}


def assert_well_formed_access_token(token: str, service: AuthService) -> None:
    """KEY-05 / RFC 9068 §2.2: the claim set, the header, the lifetime."""
    policy = service.tokens.policy
    header = decode_part(token, 0)
    claims = decode_part(token, 1)
    signer = service.tokens.keys.signing_key
    assert header == {"alg": policy.algorithm, "typ": "at+jwt", "kid": signer.kid}
    assert set(claims) == EXPECTED_CLAIMS
    assert claims["iss"] == policy.issuer == ORIGIN
    assert claims["aud"] == policy.audience == ORIGIN
    assert claims["client_id"] == policy.client_id
    assert all(isinstance(claims[n], int) for n in ("exp", "iat", "nbf"))
    assert claims["nbf"] == claims["iat"] == int(service.now().timestamp())
    assert 0 < claims["exp"] - claims["iat"] <= policy.access_ttl.total_seconds()
    assert len(unb64url(claims["jti"])) >= 16  # 128 bits (JWT-15)


@EVERY_BACKEND
async def test_KEY_05_issued_eddsa_tokens_carry_every_claim(
    service: AuthService, client: httpx.AsyncClient, user_email: str
) -> None:
    response = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": user_email, "password": PASSWORD},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 15 * 60
    assert_well_formed_access_token(body["access_token"], service)
    refreshed = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert_well_formed_access_token(refreshed.json()["access_token"], service)


@pytest.mark.parametrize("alg", ["ES256", "RS256", "HS256"])
async def test_KEY_05_issued_tokens_carry_every_claim_for_every_algorithm(
    make_service: ServiceFactory, alg: str
) -> None:
    service = await make_service(algorithm=alg, access_ttl=timedelta(minutes=5))
    forger = await forger_on(service)
    assert_well_formed_access_token(forger.genuine, service)
    assert forger.claims["exp"] - forger.claims["iat"] == 300


async def test_KEY_05_jtis_are_unique(service: AuthService, user_email: str) -> None:
    pairs = [await service.token_login(user_email, PASSWORD) for _ in range(20)]
    assert len({decode_part(p.access_token, 1)["jti"] for p in pairs}) == 20


# --- REPLAY: revocation and rotation at the HTTP edge (TERM-01..03, JWT-15, RT-02, RT-03) ----


@EVERY_BACKEND
async def test_JWT_15_REPLAY_revoked_access_token_is_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    await assert_http_accepted(client, forger.genuine)
    revoked = await client.post("/auth/revoke", data={"token": forger.genuine})
    assert revoked.status_code == 200, revoked.text
    await assert_rejected(forger.service, client, forger.genuine, "revoked")


@EVERY_BACKEND
async def test_TERM_01_REPLAY_tokens_are_useless_after_bearer_logout(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    out = await client.post("/auth/logout", headers=bearer(forger.genuine))
    assert out.status_code == 204, out.text
    await assert_rejected(forger.service, client, forger.genuine, "revoked")
    refreshed = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": forger.refresh_token}
    )
    assert refreshed.status_code == 400, refreshed.text
    assert refreshed.json()["error"] == "invalid_grant"


@EVERY_BACKEND
async def test_TERM_03_REPLAY_password_change_ends_every_token(
    forger: Forger, client: httpx.AsyncClient, user_email: str
) -> None:
    other = await forger.service.token_login(user_email, PASSWORD)
    changed = await client.post(
        "/auth/password",
        headers=bearer(forger.genuine),
        json={"current_password": PASSWORD, "new_password": "a different long passphrase 42"},
    )
    assert changed.status_code < 300, changed.text
    await reject_each(
        forger.service,
        client,
        {"this": (forger.genuine, "revoked"), "other": (other.access_token, "revoked")},
    )
    for refresh in (forger.refresh_token, other.refresh_token):
        with pytest.raises(InvalidGrant):
            await forger.service.tokens.refresh_grant(refresh)


@EVERY_BACKEND
async def test_RT_02_RT_03_REPLAY_reused_refresh_token_revokes_the_family(
    forger: Forger, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """Rotate RT1 -> RT2, wait past the grace window, replay RT1: RT2 and every access token
    of the family (including the one issued with RT2) stop working."""
    first = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": forger.refresh_token}
    )
    assert first.status_code == 200, first.text
    rotated = first.json()
    await assert_http_accepted(client, rotated["access_token"])
    clock.advance(forger.service.tokens.policy.refresh_grace + timedelta(seconds=1))
    replay = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": forger.refresh_token}
    )
    assert replay.status_code == 400, replay.text
    assert replay.json()["error"] == "invalid_grant"
    again = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
    )
    assert again.status_code == 400, again.text
    await reject_each(
        forger.service,
        client,
        {"first": (forger.genuine, "revoked"), "rotated": (rotated["access_token"], "revoked")},
    )


async def test_REPLAY_unknown_refresh_token_is_invalid_grant_without_echo(
    client: httpx.AsyncClient,
) -> None:
    bogus = "R" * 43
    response = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": bogus}
    )
    assert response.status_code == 400, response.text
    assert bogus not in response.text
    assert response.json()["error"] == "invalid_grant"


def test_JWT_19_uniform_error_body_matches_the_error_class() -> None:
    assert {"error": InvalidToken.code, "detail": InvalidToken.default_detail} == INVALID_TOKEN_BODY
