"""Helpers the attack modules share: forging on a service of one's own, raw JSON,
HMAC-keyed tokens, a self-signed certificate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.x509.oid import NameOID

from tests.support.services import PASSWORD
from tests.tokens.conftest import P256_ORDER, Forger, b64url, hmac_sign, make_forger, segment
from velvetrope import AuthService

EMAIL = "eve@example.com"
COOKIE = "__Host-velvetrope-session"
N = P256_ORDER


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


def self_signed_cert(private: object) -> bytes:
    """A PEM X.509 certificate for ``private``'s public key, signed by itself."""
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
