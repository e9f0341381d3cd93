"""Positive controls, then the algorithm rows: NONE (JWT-01), CONF key confusion (JWT-02),
ALLOW the exact allowlist (JWT-01, JWT-02)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from tests.support.stores import every_backend
from tests.tokens.attacks.helpers import forger_on, hmac_token, self_signed_cert
from tests.tokens.conftest import (
    Case,
    Forger,
    ServiceFactory,
    accept_each,
    assert_http_accepted,
    b64url,
    es256_raw,
    hmac_sign,
    http_client,
    reject_each,
    segment,
    unb64url,
    without,
)
from velvetrope import AuthService
from velvetrope.core.tokens.access import ACCESS_TYP
from velvetrope.core.tokens.codec import Jwk

# --- positive controls ------------------------------------------------------------------------


@every_backend
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


# --- CONF: HMAC keyed with our own public key (JWT-02) ----------------------------------------


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
        "x509-cert-pem": self_signed_cert(private),
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


# --- ALLOW: the allowlist is exact (JWT-01, JWT-02) -------------------------------------------


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
