"""The token codec: any text is a verified token or ``InvalidToken``, nothing else.

Drawn: noise, three base64url segments of any bytes, headers and payloads of any JSON
(with the members a real token has, or not) around a genuine signature, genuine
tokens with one segment swapped, and proofs of possession with odd embedded keys.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.properties.strategies import (
    B64URL,
    JSON_VALUES,
    PROPERTIES,
    b64url,
    json_bytes,
    json_objects,
)
from velvetrope.core.tokens import codec
from velvetrope.core.tokens.codec import Algorithm, Jwk
from velvetrope.errors import InvalidToken

TYP = "at+jwt"
RING: tuple[Algorithm, ...] = ("EdDSA", "ES256", "HS256")
KEYS: dict[str, tuple[Jwk, Algorithm]] = {alg: (codec.generate_jwk(alg), alg) for alg in RING}
"""One key per algorithm, each under its algorithm's name as ``kid`` (RSA is left out:
generating 3072-bit keys is slow, and its path is the same joserfc call)."""
PROOF_KEY = codec.generate_proof_key("ES256")
CLAIMS = {"sub": "u1", "iat": 1, "exp": 2**31, "scope": "read"}
GENUINE = {
    kid: codec.sign_compact(CLAIMS, key=key, alg=alg, kid=kid, typ=TYP)
    for kid, (key, alg) in KEYS.items()
}


def lookup(kid: str) -> tuple[Jwk, Algorithm] | None:
    return KEYS.get(kid)


def decode(token: str) -> codec.Decoded | None:
    """The decoded token, or ``None`` for ``InvalidToken``; anything else propagates."""
    try:
        return codec.decode_compact(token, lookup, typ=TYP)
    except InvalidToken:
        return None


segments = st.text(alphabet=B64URL, max_size=120)
headers = json_objects(
    alg=st.sampled_from(["EdDSA", "ES256", "HS256", "RS256", "none", "PS256"]) | JSON_VALUES,
    kid=st.sampled_from(list(KEYS)) | st.text(max_size=20) | JSON_VALUES,
    typ=st.sampled_from([TYP, "AT+JWT", "jwt", "dpop+jwt"]) | JSON_VALUES,
)


@PROPERTIES
@given(st.text(max_size=400) | st.builds("{}.{}.{}".format, segments, segments, segments))
def test_RES_02_any_text_is_a_token_or_invalid_token(text: str) -> None:
    assert decode(text) is None  # nothing drawn here is signed by a key in the ring


@PROPERTIES
@given(header=headers, payload=JSON_VALUES | json_objects(), alg=st.sampled_from(list(GENUINE)))
def test_RES_02_any_json_around_a_genuine_signature(
    header: dict[str, Any], payload: Any, alg: str
) -> None:
    signature = GENUINE[alg].rsplit(".", 1)[1]
    token = f"{b64url(json_bytes(header))}.{b64url(json_bytes(payload))}.{signature}"
    assert decode(token) is None  # the signature covers other bytes


@PROPERTIES
@given(
    alg=st.sampled_from(list(GENUINE)),
    which=st.integers(0, 2),
    replacement=segments | st.binary(max_size=200).map(b64url),
)
def test_RES_02_a_genuine_token_with_one_segment_swapped(
    alg: str, which: int, replacement: str
) -> None:
    parts = GENUINE[alg].split(".")
    changed = parts[which] != replacement
    parts[which] = replacement
    decoded = decode(".".join(parts))
    if changed:
        assert decoded is None
    else:
        assert decoded is not None
        assert decoded.claims == CLAIMS


@PROPERTIES
@given(claims=json_objects())
def test_RES_02_genuine_tokens_of_any_claims_round_trip(claims: dict[str, Any]) -> None:
    """The positive control: what the codec signs, it reads back exactly."""
    for kid, (key, alg) in KEYS.items():
        token = codec.sign_compact(claims, key=key, alg=alg, kid=kid, typ=TYP)
        decoded = decode(token)
        assert decoded is not None
        assert decoded.claims == claims


@PROPERTIES
@given(st.binary(max_size=300) | JSON_VALUES.map(json_bytes))
def test_RES_02_strict_json_is_an_object_or_invalid_token(raw: bytes) -> None:
    try:
        value = codec.loads_strict(raw)
    except InvalidToken:
        return
    assert isinstance(value, dict)


embedded_keys = json_objects(
    kty=st.sampled_from(["EC", "OKP", "RSA", "oct"]) | JSON_VALUES,
    crv=st.sampled_from(["P-256", "P-384", "Ed25519", "X25519"]) | JSON_VALUES,
    x=st.binary(max_size=64).map(b64url) | JSON_VALUES,
    y=st.binary(max_size=64).map(b64url) | JSON_VALUES,
    n=st.binary(max_size=300).map(b64url) | JSON_VALUES,
    e=st.sampled_from(["AQAB", "Aw", ""]) | JSON_VALUES,
    d=st.binary(max_size=32).map(b64url),
)


@PROPERTIES
@given(
    alg=st.sampled_from(["ES256", "EdDSA", "RS256", "PS256", "HS256", "none"]) | JSON_VALUES,
    typ=st.sampled_from(["dpop+jwt", "DPoP+JWT", "jwt"]) | JSON_VALUES,
    jwk=embedded_keys | JSON_VALUES,
    payload=JSON_VALUES,
)
def test_RES_02_any_proof_header_is_a_proof_or_invalid_token(
    alg: Any, typ: Any, jwk: Any, payload: Any
) -> None:
    genuine = codec.sign_proof({"jti": "x"}, key=PROOF_KEY, alg="ES256", typ="dpop+jwt")
    header = {"alg": alg, "typ": typ, "jwk": jwk}
    token = f"{b64url(json_bytes(header))}.{b64url(json_bytes(payload))}.{genuine.split('.')[2]}"
    try:
        codec.decode_proof(token, typ="dpop+jwt", algorithms=codec.PROOF_ALGORITHMS)
    except InvalidToken:
        return
    raise AssertionError("a proof whose signature covers other bytes was accepted")
