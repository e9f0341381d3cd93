"""The one module that touches the JOSE library (docs/style.md rule 5).

Everything a token must satisfy before its signature is even checked is checked
here, strictly and by us, because the libraries leave it to the caller (checklist
Part 2, and JWT-05..JWT-08, JWT-17):

* size caps before any decoding; only compact serialisation, three base64url segments,
  canonical encoding (no padding, no stray bits);
* header and payload are UTF-8 JSON objects with no duplicate members and no
  NaN/Infinity; the header holds only ``alg``, ``typ`` and ``kid`` (so ``jwk``, ``jku``,
  ``x5u``, ``x5c``, ``crit``, ``cty``, ``enc``, ``zip``, ``b64`` are all refused);
* ``alg`` must equal the algorithm bound to the key ``kid`` names; ``typ`` must be the
  one the caller expects.

Only then does joserfc verify the signature. Claims are validated by the callers
(:mod:`velvetrope.core.tokens.claims`) on the payload this returns.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwa import EdDSAAlgorithm
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from velvetrope.errors import InvalidToken

__all__ = [
    "ALGORITHMS",
    "MAX_TOKEN_BYTES",
    "Algorithm",
    "InvalidToken",
    "Jwk",
    "decode_compact",
    "generate_jwk",
    "jwk_from_json",
    "loads_strict",
    "public_jwk",
    "sign_compact",
    "thumbprint",
]

Algorithm = Literal["EdDSA", "ES256", "RS256", "HS256"]
ALGORITHMS: tuple[Algorithm, ...] = ("EdDSA", "ES256", "RS256", "HS256")

Jwk = OKPKey | ECKey | RSAKey | OctKey

MAX_TOKEN_BYTES = 8192
_MAX_HEADER_CHARS = 1024
_MAX_SIGNATURE_CHARS = 1024
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_KID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_HEADER_MEMBERS = frozenset({"alg", "typ", "kid"})


class _QuietEdDSA(EdDSAAlgorithm):
    # joserfc flags the polymorphic "EdDSA" name as deprecated by RFC 9864 in favour of
    # "Ed25519". PyJWT and most verifiers only know "EdDSA", so we keep the name, bound
    # to Ed25519 keys only (see jwk_from_json), without the per-call warning.
    security_warning = None  # type: ignore[assignment]


class _Registry(JWSRegistry):
    algorithms = {  # noqa: RUF012 - joserfc's registry API is this class attribute
        **JWSRegistry.algorithms,
        "EdDSA": _QuietEdDSA(),
    }


_REGISTRIES = {alg: _Registry(algorithms=[alg]) for alg in ALGORITHMS}


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise InvalidToken("duplicate JSON member")
    return result


def _no_constants(name: str) -> Any:
    raise InvalidToken(f"non-finite number {name}")


def loads_strict(raw: bytes) -> dict[str, Any]:
    """Parse a JWS header or payload: a UTF-8 JSON object, no duplicates, no NaN/Infinity.

    Raises:
        InvalidToken: Anything else.
    """
    try:
        text = raw.decode("utf-8")
        if text.startswith("\ufeff"):
            raise InvalidToken("byte order mark")
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except InvalidToken:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidToken(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(value, dict):
        raise InvalidToken("not a JSON object")
    return value


def _b64decode(segment: str) -> bytes:
    if len(segment) % 4 == 1:
        raise InvalidToken("bad base64url length")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("bad base64url") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        raise InvalidToken("non-canonical base64url")
    return raw


@dataclass(frozen=True, slots=True)
class Decoded:
    """A verified JWS: its header and its payload, parsed strictly."""

    header: dict[str, Any]
    claims: dict[str, Any]


KeyLookup = Callable[[str], "tuple[Jwk, Algorithm] | None"]
"""Given a ``kid``, the key and its single algorithm; ``None`` when unknown."""


def decode_compact(token: str, keys: KeyLookup, *, typ: str | None) -> Decoded:
    """Verify a compact JWS and return its strictly parsed header and claims.

    Args:
        token: The presented token.
        keys: Resolves the header's ``kid`` to a trusted key and the one algorithm bound
            to it. The token cannot name its own key (JWT-03).
        typ: The exact ``typ`` header required (case-insensitive, RFC 7515 §4.1.9);
            ``None`` only for test-vector harnesses that have no ``typ``.

    Raises:
        InvalidToken: For every failure, with a ``reason`` for logs.
    """
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("too large")
    if not _COMPACT.fullmatch(token):
        raise InvalidToken("not a compact JWS")
    header_b64, payload_b64, signature_b64 = token.split(".")
    if len(header_b64) > _MAX_HEADER_CHARS or len(signature_b64) > _MAX_SIGNATURE_CHARS:
        raise InvalidToken("segment too large")
    header = loads_strict(_b64decode(header_b64))
    _check_header(header, typ)
    found = keys(header["kid"])
    if found is None:
        raise InvalidToken("unknown kid")
    key, alg = found
    if header["alg"] != alg:
        raise InvalidToken("alg does not match the key")  # JWT-02: one alg per key
    payload = _b64decode(payload_b64)
    _b64decode(signature_b64)
    try:
        jws.deserialize_compact(token, key, algorithms=[alg], registry=_REGISTRIES[alg])
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidToken(f"signature: {type(exc).__name__}") from None
    return Decoded(header=header, claims=loads_strict(payload))


def _check_header(header: Mapping[str, Any], typ: str | None) -> None:
    extra = set(header) - _HEADER_MEMBERS
    if extra:
        raise InvalidToken(f"header member not allowed: {sorted(extra)[0]}")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise InvalidToken("alg not allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not _KID.fullmatch(kid):
        raise InvalidToken("bad kid")
    if typ is not None:
        presented = header.get("typ")
        if not isinstance(presented, str) or presented.lower() != typ.lower():
            raise InvalidToken("wrong typ")


def sign_compact(claims: Mapping[str, Any], *, key: Jwk, alg: Algorithm, kid: str, typ: str) -> str:
    """Sign ``claims`` as a compact JWS with header ``{alg, typ, kid}``."""
    payload = json.dumps(claims, separators=(",", ":"), sort_keys=True, allow_nan=False)
    header = {"alg": alg, "typ": typ, "kid": kid}
    return jws.serialize_compact(
        header, payload.encode("utf-8"), key, algorithms=[alg], registry=_REGISTRIES[alg]
    )


def generate_jwk(alg: Algorithm) -> Jwk:
    """A fresh private key for ``alg`` (KEY-01, KEY-02: HS256 32 random bytes, RSA 3072)."""
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", private=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    if alg == "RS256":
        return RSAKey.generate_key(3072, private=True)
    return OctKey.generate_key(256, private=True)


def jwk_from_json(text: str, alg: Algorithm) -> Jwk:
    """Load a stored private JWK, checking it is the key type ``alg`` needs."""
    data = json.loads(text)
    expected: dict[Algorithm, type[Jwk]] = {
        "EdDSA": OKPKey,
        "ES256": ECKey,
        "RS256": RSAKey,
        "HS256": OctKey,
    }
    if not isinstance(data, dict):
        raise ValueError("a JWK must be a JSON object")
    kty = {"EdDSA": "OKP", "ES256": "EC", "RS256": "RSA", "HS256": "oct"}[alg]
    if data.get("kty") != kty:
        raise ValueError(f"{alg} keys must have kty {kty!r}")
    key = expected[alg].import_key(data)
    if isinstance(key, RSAKey) and key.raw_value.key_size < 2048:  # KEY-02
        raise ValueError("RSA keys must be at least 2048 bits")
    if isinstance(key, OctKey) and len(key.raw_value) < 32:  # KEY-01
        raise ValueError("HS256 keys must be at least 32 bytes")
    if alg == "EdDSA" and data.get("crv") != "Ed25519":
        raise ValueError("EdDSA keys must be Ed25519")
    if alg == "ES256" and data.get("crv") != "P-256":
        raise ValueError("ES256 keys must be P-256")
    return key


def private_json(key: Jwk) -> str:
    """The private JWK as JSON, for the key store (never logged)."""
    return json.dumps(key.as_dict(private=True), sort_keys=True)


def public_jwk(key: Jwk, *, kid: str, alg: Algorithm) -> dict[str, Any]:
    """The public JWK for a JWKS document; ``{}`` for symmetric keys (never published)."""
    if isinstance(key, OctKey):
        return {}
    return {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}


def thumbprint(key: Jwk) -> str:
    """The RFC 7638 SHA-256 thumbprint, used as ``kid``."""
    return str(key.thumbprint())
