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

Proofs of possession are the one exception to "a token never names its key" (JWT-03):
a DPoP proof (RFC 9449) and a device-bound session's registration (DBSC) carry the
*client's* public key in a ``jwk`` header, and what they prove is that the sender
holds its private half. :func:`decode_proof` is the only way such a header is read:
``typ`` and ``alg`` fixed by the caller (asymmetric only: ES256, EdDSA, RS256, PS256
at most), the key public (private members refused), of the type and size the ``alg``
needs; or, for a later proof, no ``jwk`` at all and the key the caller stored.
Every other token still refuses ``jwk``, ``jku``, ``x5u`` and ``x5c``.
"""

from __future__ import annotations

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
    "PROOF_ALGORITHMS",
    "Algorithm",
    "DecodedProof",
    "InvalidToken",
    "Jwk",
    "ProofAlgorithm",
    "decode_compact",
    "decode_proof",
    "generate_jwk",
    "generate_proof_key",
    "jwk_from_json",
    "loads_strict",
    "public_jwk",
    "sign_compact",
    "sign_proof",
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

ProofAlgorithm = Literal["ES256", "EdDSA", "RS256", "PS256"]
PROOF_ALGORITHMS: tuple[ProofAlgorithm, ...] = ("ES256", "EdDSA", "RS256", "PS256")
"""Asymmetric only: a proof of possession is never signed with a shared secret (or none)."""


class _ProofRegistry(_Registry):
    max_header_length = 2 * _MAX_HEADER_CHARS  # an embedded RSA key; we cap it first anyway


_PROOF_REGISTRIES = {alg: _ProofRegistry(algorithms=[alg]) for alg in PROOF_ALGORITHMS}
# joserfc's algorithm objects: what verifies a signature once we have checked the rest.
_ALGORITHMS: dict[str, Any] = {
    **{alg: _PROOF_REGISTRIES[alg].get_alg(alg) for alg in PROOF_ALGORITHMS},
    **{alg: _REGISTRIES[alg].get_alg(alg) for alg in ALGORITHMS},
}
_PROOF_KEYS: dict[str, tuple[str, str | None]] = {  # alg -> (kty, crv)
    "ES256": ("EC", "P-256"),
    "EdDSA": ("OKP", "Ed25519"),
    "RS256": ("RSA", None),
    "PS256": ("RSA", None),
}
_PUBLIC_MEMBERS = {
    "EC": frozenset({"kty", "crv", "x", "y"}),
    "OKP": frozenset({"kty", "crv", "x"}),
    "RSA": frozenset({"kty", "n", "e"}),
}
_KEY_INFO = frozenset({"alg", "use", "kid", "key_ops", "ext"})
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise InvalidToken("duplicate JSON member")
    return result


def _no_constants(name: str) -> Any:
    raise InvalidToken(f"non-finite number {name}")


# One decoder for every parse (``json.loads`` with hooks builds a new one per call).
_STRICT_JSON = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constants)


def loads_strict(raw: bytes) -> dict[str, Any]:
    """Parse a JWS header or payload: a UTF-8 JSON object, no duplicates, no NaN/Infinity.

    Raises:
        InvalidToken: Anything else.
    """
    try:
        text = raw.decode("utf-8")
        if text.startswith("\ufeff"):
            raise InvalidToken("byte order mark")
        value = _STRICT_JSON.decode(text)
    except InvalidToken:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidToken(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(value, dict):
        raise InvalidToken("not a JSON object")
    return value


# The last character of an unpadded base64url segment whose leftover bits are zero:
# with 2 characters in the last group 4 bits are left over, with 3 characters 2 bits.
_CANONICAL_LAST = {
    2: frozenset("AQgw"),
    3: frozenset("AEIMQUYcgkosw048"),
}


_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_PAD = (b"", b"", b"==", b"=")  # by the length of the last group


def _b64decode(segment: str) -> bytes:
    """Decode unpadded, canonical base64url (JWT-05; FMT: no stray bits, no padding).

    ``segment`` is one that :func:`_split` cut from a token matching ``_COMPACT``, so
    its alphabet is checked already. Canonical form is checked from the text (the
    last character's unused bits) rather than by encoding the bytes again: same
    answer, less work on the per-request path.
    """
    tail = len(segment) % 4
    if tail == 1:
        raise InvalidToken("bad base64url length")
    if tail and segment[-1] not in _CANONICAL_LAST[tail]:
        raise InvalidToken("non-canonical base64url")
    try:  # base64.urlsafe_b64decode's own steps, without its generic input handling
        return binascii.a2b_base64(segment.encode("ascii").translate(_TO_STANDARD) + _PAD[tail])
    except (binascii.Error, ValueError):
        raise InvalidToken("bad base64url") from None


@dataclass(frozen=True, slots=True)
class Decoded:
    """A verified JWS: its header and its payload, parsed strictly."""

    header: dict[str, Any]
    claims: dict[str, Any]


def _split(
    token: str, max_header: int, seen: dict[str, dict[str, Any]] | None = None
) -> tuple[dict[str, Any], str, str]:
    """Size caps, compact form, and the strictly parsed header (JWT-05, JWT-08, JWT-17).

    ``seen`` maps header segments of tokens that verified before to their parsed
    header: the same text parses to the same object, so it is not parsed again (a
    copy is returned; callers may not change the cached one).
    """
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("too large")
    if not _COMPACT.fullmatch(token):
        raise InvalidToken("not a compact JWS")
    header_b64, payload_b64, signature_b64 = token.split(".")
    if len(header_b64) > max_header or len(signature_b64) > _MAX_SIGNATURE_CHARS:
        raise InvalidToken("segment too large")
    known = None if seen is None else seen.get(header_b64)
    if known is not None:
        return dict(known), payload_b64, signature_b64
    return loads_strict(_b64decode(header_b64)), payload_b64, signature_b64


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
    header, payload_b64, signature_b64 = _split(token, _MAX_HEADER_CHARS, _checked_headers)
    _check_header(header, typ)
    found = keys(header["kid"])
    if found is None:
        raise InvalidToken("unknown kid")
    key, alg = found
    if header["alg"] != alg:
        raise InvalidToken("alg does not match the key")  # JWT-02: one alg per key
    payload = _b64decode(payload_b64)
    signature = _b64decode(signature_b64)
    _verify_signature(token, len(token) - len(signature_b64) - 1, signature, key, alg)
    claims = loads_strict(payload)
    _remember_header(_checked_headers, token, header)
    return Decoded(header=header, claims=claims)


def _verify_signature(token: str, end: int, signature: bytes, key: Jwk, alg: str) -> None:
    """Check the signature over ``token[:end]`` (the JWS signing input) with ``key``.

    The token's form, header and ``alg`` were checked by us already, so this asks
    joserfc's algorithm for the signature check alone rather than parsing the token a
    second time (``jws.deserialize_compact`` repeats the base64 and JSON work).

    Raises:
        InvalidToken: The signature does not verify.
    """
    algorithm = _ALGORITHMS[alg]
    try:
        if _usable_keys.get((id(key), alg)) is not key:
            key.check_use("sig")  # as joserfc's own path does: a key marked for another use
            algorithm.check_key(key)  # or of the wrong type never verifies
            _remember_usable(key, alg)
        ok = algorithm.verify(token[:end].encode("ascii"), signature, key)
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidToken(f"signature: {type(exc).__name__}") from None
    if not ok:
        raise InvalidToken("signature: BadSignatureError")


# Keys that passed the use and type checks for an algorithm, by identity (the entry
# holds the key, so its id is not reused while it is there): a key's checks run once,
# not on every request. Bounded like the other caches; proof keys come and go.
_usable_keys: dict[tuple[int, str], Jwk] = {}
USABLE_KEY_CACHE_SIZE = 256


def _remember_usable(key: Jwk, alg: str) -> None:
    if len(_usable_keys) >= USABLE_KEY_CACHE_SIZE:
        del _usable_keys[next(iter(_usable_keys))]  # the oldest
    _usable_keys[(id(key), alg)] = key


# Headers already seen on a token whose signature verified: every token a key signs
# has the same header segment, so the strict JSON parse of it is done once per key.
# Only verified tokens add entries (forged ones cannot churn it) and it is bounded.
HEADER_CACHE_SIZE = 64
_checked_headers: dict[str, dict[str, Any]] = {}
_checked_proof_headers: dict[str, dict[str, Any]] = {}


def cached_headers() -> int:
    """How many parsed headers are cached (tokens' and proofs')."""
    return len(_checked_headers) + len(_checked_proof_headers)


def checked_keys() -> int:
    """How many keys have passed their use and type checks (tokens' and proofs')."""
    return len(_usable_keys)


def cached_proof_keys() -> int:
    """How many imported proof keys are cached."""
    return len(_public_keys)


def _remember_header(cache: dict[str, dict[str, Any]], token: str, header: dict[str, Any]) -> None:
    segment = token.partition(".")[0]
    if segment in cache:
        return
    if len(cache) >= HEADER_CACHE_SIZE:
        del cache[next(iter(cache))]  # the oldest
    cache[segment] = header


@dataclass(frozen=True, slots=True)
class DecodedProof:
    """A verified proof of possession.

    Attributes:
        header: Its header, parsed strictly.
        claims: Its payload, parsed strictly (the caller validates the claims).
        jwk: The public key that verified it, as a JWK object (``kty`` and its members).
        thumbprint: The key's RFC 7638 SHA-256 thumbprint (``jkt``).
    """

    header: dict[str, Any]
    claims: dict[str, Any]
    jwk: dict[str, Any]
    thumbprint: str


def decode_proof(
    token: str,
    *,
    typ: str,
    algorithms: tuple[ProofAlgorithm, ...],
    key: Mapping[str, Any] | None = None,
) -> DecodedProof:
    """Verify a proof of possession signed by the client's own key.

    Args:
        token: The compact JWS.
        typ: The exact ``typ`` required (``dpop+jwt``, ``dbsc+jwt``).
        algorithms: The ``alg`` values allowed (a subset of :data:`PROOF_ALGORITHMS`).
        key: The public JWK stored when the key was registered: the proof must carry
            no ``jwk`` of its own. ``None``: the proof must embed its public ``jwk``.

    Raises:
        InvalidToken: For every failure, with a ``reason`` for logs.
    """
    # An embedded RSA key makes a proof's header larger than a token's.
    seen = _checked_proof_headers if key is None else None
    header, payload_b64, signature_b64 = _split(token, 2 * _MAX_HEADER_CHARS, seen)
    alg = _proof_header(header, typ, algorithms, embedded=key is None)
    public = dict(key) if key is not None else header["jwk"]
    imported, jkt = _public_key(public, alg)
    payload = _b64decode(payload_b64)
    signature = _b64decode(signature_b64)
    _verify_signature(token, len(token) - len(signature_b64) - 1, signature, imported, alg)
    jwk = {k: public[k] for k in sorted(_PUBLIC_MEMBERS[public["kty"]])}
    claims = loads_strict(payload)
    if seen is not None:
        _remember_header(seen, token, header)
    return DecodedProof(header, claims, jwk, jkt)


def _proof_header(
    header: Mapping[str, Any], typ: str, algorithms: tuple[ProofAlgorithm, ...], *, embedded: bool
) -> ProofAlgorithm:
    allowed = {"alg", "typ", "jwk"} if embedded else {"alg", "typ"}
    extra = set(header) - allowed
    if extra:  # jku, x5u, x5c, kid, crit...: never a key by reference (JWT-03)
        raise InvalidToken(f"header member not allowed: {sorted(extra)[0]}")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms or alg not in _PROOF_REGISTRIES:
        raise InvalidToken("alg not allowed")  # none, HS256, anything not asymmetric
    presented = header.get("typ")
    if not isinstance(presented, str) or presented.lower() != typ.lower():
        raise InvalidToken("wrong typ")
    if embedded and not isinstance(header.get("jwk"), dict):
        raise InvalidToken("no jwk")
    return next(a for a in PROOF_ALGORITHMS if a == alg)


PROOF_KEY_CACHE_SIZE = 4096
_public_keys: dict[tuple[str, object], tuple[Jwk, str]] = {}


def _public_key(data: Mapping[str, Any], alg: ProofAlgorithm) -> tuple[Jwk, str]:
    """The checked, imported key and its thumbprint; a client's next proof reuses them
    (importing and hashing cost more than the signature check)."""
    try:  # a JWK of text members (every valid one) is its own cache key
        name: tuple[str, object] = (alg, tuple(sorted(data.items())))
        hash(name)
    except TypeError:  # nested values: name it by its canonical JSON
        name = (alg, json.dumps(data, sort_keys=True))
    found = _public_keys.get(name)
    if found is None:
        key = _import_public(data, alg)
        found = (key, thumbprint(key))
        if len(_public_keys) >= PROOF_KEY_CACHE_SIZE:
            del _public_keys[next(iter(_public_keys))]  # the oldest
        _public_keys[name] = found
    return found


def _import_public(data: Mapping[str, Any], alg: ProofAlgorithm) -> Jwk:
    """A public key of the type ``alg`` needs, from a JWK that holds nothing private."""
    kty, crv = _PROOF_KEYS[alg]
    if data.get("kty") != kty:
        raise InvalidToken("jwk kty does not match alg")
    members = set(data)
    if members & _PRIVATE_MEMBERS:
        raise InvalidToken("jwk holds private key material")
    needed = _PUBLIC_MEMBERS[kty]
    if not needed <= members or members - needed - _KEY_INFO:
        raise InvalidToken("jwk members")
    if not all(isinstance(data[m], str) for m in needed):
        raise InvalidToken("jwk members")
    if crv is not None and data.get("crv") != crv:
        raise InvalidToken("jwk curve does not match alg")
    classes: dict[str, type[OKPKey] | type[ECKey] | type[RSAKey]] = {
        "EC": ECKey,
        "OKP": OKPKey,
        "RSA": RSAKey,
    }
    try:
        key: Jwk = classes[kty].import_key({m: data[m] for m in needed})
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidToken(f"jwk: {type(exc).__name__}") from None
    if isinstance(key, RSAKey) and key.raw_value.key_size < 2048:  # KEY-02
        raise InvalidToken("RSA key too small")
    return key


def sign_proof(claims: Mapping[str, Any], *, key: Jwk, alg: ProofAlgorithm, typ: str) -> str:
    """Sign a proof of possession: header ``{alg, typ, jwk}`` with the public half of ``key``
    (what :func:`velvetrope.client.DPoPAuth` sends)."""
    payload = json.dumps(claims, separators=(",", ":"), sort_keys=True, allow_nan=False)
    header = {"alg": alg, "typ": typ, "jwk": key.as_dict(private=False)}
    return jws.serialize_compact(
        header, payload.encode("utf-8"), key, algorithms=[alg], registry=_PROOF_REGISTRIES[alg]
    )


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


def generate_proof_key(alg: ProofAlgorithm) -> Jwk:
    """A fresh private key for signing proofs of possession with ``alg`` (a client's)."""
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", private=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    return RSAKey.generate_key(2048, private=True)


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
