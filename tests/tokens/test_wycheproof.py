"""Wycheproof JOSE vectors through velvetrope's verifier and key loader.

* ``json_web_signature_test.json``: every vector goes through the real verification
  path, ``codec.decode_compact(token, lookup, typ=None)``, where ``lookup`` answers only
  for the group's key ``kid`` with the key imported by ``codec.jwk_from_json`` and bound
  to the JWK's own ``alg`` (as ``KeyRing`` binds each stored key to one algorithm).
* ``json_web_key_test.json`` (KEY-04): each key set goes through ``codec.jwk_from_json``
  (the only key loader velvetrope has), then its vector through ``decode_compact``.

The vectors are JWS test vectors, not JWTs: most payloads are ``"foo"``, which the
codec refuses *after* the signature verified (``claims = loads_strict(payload)`` is the
last step of ``decode_compact``). ``outcome`` therefore counts "payload is not a JSON
object" as VERIFIED; ``test_payload_reasons_are_only_reached_after_the_signature_verifies``
pins that ordering.

Our policy is stricter than JWS (EdDSA/ES256/RS256/HS256 only; header members alg, typ
and kid only; a kid of ``[A-Za-z0-9_-]{1,128}``; a non-empty payload; strict base64url),
so some vectors Wycheproof calls valid are rejected on purpose. They are listed below by
reason; for each the test asserts the rejection happens *for that reason*, and
``test_jws_summary`` asserts the lists are exactly what they are, so they cannot grow
silently.

The codec requires a ``kid`` header (checked before the lookup is called). Every valid
vector has one; the two without (tcIds 341, 342, ``alg: none``) are refused earlier, on
``alg``. The keys of tcIds 353-356 (``use: enc``, ``key_ops: [encrypt]``) carry no
``alg``, so no ring could hold them: the lookup does not know their kid.
"""

from __future__ import annotations

import collections
import json
import warnings
from collections.abc import Mapping
from typing import Any

import pytest

from tests.tokens.conftest import (
    hmac_sign,
    load_wycheproof,
    require_wycheproof,
    segment,
    unb64url,
)
from velvetrope.core.tokens import codec
from velvetrope.core.tokens.codec import Algorithm, Jwk, KeyLookup
from velvetrope.errors import InvalidToken

JWS_FILE = "json_web_signature_test.json"
JWK_FILE = "json_web_key_test.json"

VERIFIED = "VERIFIED"
"""The signature verified (the payload may still not be a JWT claims set)."""

# decode_compact's reasons from loads_strict; for the *payload* they come after the signature.
PAYLOAD_REASONS = (
    "not JSON",
    "not a JSON object",
    "duplicate JSON member",
    "non-finite number",
    "byte order mark",
)

_ALGORITHMS: dict[str, Algorithm] = {alg: alg for alg in codec.ALGORITHMS}

# --- Valid vectors our stricter policy rejects, by reason (the expected reason prefix) ---

UNSUPPORTED_ALG = {
    # RS384, RS512, PS256, PS384, PS512, ES512 (RFC 7520 figures 20 and 27 included)
    *(265, 266, 267, 269, 270, 271),
    *(273, 274, 275, 287, 288),
    *(321, 322, 323, 326, 327, 328),
    *(346, 347, 350, 351),
}
EMPTY_PAYLOAD = {259, 264, 268, 272, 320, 325}
KID_CHARSET = {345, 349}  # kid "bilbo.baggins@hobbiton.example" ('.' and '@')
NON_BASE64URL_CHARACTER = {372, 373}  # a '?' inside a segment, which Wycheproof tolerates

POLICY_REJECTS: dict[int, tuple[str, str]] = {
    **{
        tc: ("alg not allowed", "algorithm outside EdDSA/ES256/RS256/HS256")
        for tc in UNSUPPORTED_ALG
    },
    **{
        tc: ("not a compact JWS", "empty payload segment (a JWT always has claims)")
        for tc in EMPTY_PAYLOAD
    },
    **{tc: ("bad kid", "kid outside [A-Za-z0-9_-]{1,128}") for tc in KID_CHARSET},
    **{
        tc: ("not a compact JWS", "character outside the base64url alphabet")
        for tc in NON_BASE64URL_CHARACTER
    },
}

# Vectors whose data contradicts another vector: byte-identical to valid tcId 357.
# (Their names say the padding was to be invalid, but the '=' is not in the data.) We
# assert they are identical to 357 and behave like it; the intended cases — '=' padding
# in the payload and the signature — are checked by test_intended_padding_vectors.
DATA_ERRORS: dict[int, int] = {367: 357, 370: 357}


def _group_key(group: Mapping[str, Any]) -> dict[str, Any]:
    key: dict[str, Any] = group.get("public") or group["private"]  # oct keys: private only
    return key


def group_lookup(key: Mapping[str, Any]) -> KeyLookup:
    """What a key ring holding exactly this JWK would answer.

    The key is trusted for its own ``kid`` only, bound to its own ``alg``; a JWK without
    a supported ``alg`` is not loadable (``KeyRecord.alg`` is mandatory).
    """
    alg = _ALGORITHMS.get(str(key.get("alg")))
    text = json.dumps(key)

    def lookup(kid: str) -> tuple[Jwk, Algorithm] | None:
        if alg is None or kid != key.get("kid"):
            return None
        return codec.jwk_from_json(text, alg), alg

    return lookup


def _payload_reason_after_valid_header(token: str, reason: str) -> bool:
    """A loads_strict reason whose header parsed: it came from the payload, i.e. after
    the signature verified (see ``decode_compact``)."""
    if not reason.startswith(PAYLOAD_REASONS):
        return False
    try:
        codec.loads_strict(unb64url(token.split(".", maxsplit=1)[0]))
    except (InvalidToken, ValueError):
        return False
    return True


def outcome(token: object, lookup: KeyLookup) -> str:
    """VERIFIED, or the ``InvalidToken.reason`` the verifier gave."""
    if not isinstance(token, str):
        return "not a string"  # pragma: no cover - every vector is a string today
    try:
        codec.decode_compact(token, lookup, typ=None)
    except InvalidToken as exc:
        if _payload_reason_after_valid_header(token, exc.reason):
            return VERIFIED
        return exc.reason
    return VERIFIED


JWS = load_wycheproof(JWS_FILE)
JWS_GROUPS: list[dict[str, Any]] = [] if JWS is None else JWS["testGroups"]
JWS_BY_ID: dict[int, dict[str, Any]] = {
    test["tcId"]: test for group in JWS_GROUPS for test in group["tests"]
}
JWS_PARAMS = [
    pytest.param(group, test, id=f"tc{test['tcId']:03d}-{test['comment'][:40]}")
    for group in JWS_GROUPS
    for test in group["tests"]
]


def test_wycheproof_vectors_are_present() -> None:
    """The vectors ship in tests/data/wycheproof; without them this skips locally and
    fails in CI (``CI`` set)."""
    require_wycheproof(JWS_FILE)
    require_wycheproof(JWK_FILE)
    assert JWS is not None
    assert JWS["numberOfTests"] == len(JWS_PARAMS) == 401


@pytest.mark.parametrize(("group", "test"), JWS_PARAMS)
def test_jws_vector(group: dict[str, Any], test: dict[str, Any]) -> None:
    tc = test["tcId"]
    result = outcome(test["jws"], group_lookup(_group_key(group)))
    if tc in DATA_ERRORS:
        twin = JWS_BY_ID[DATA_ERRORS[tc]]
        assert test["jws"] == twin["jws"], "no longer a duplicate: drop it from DATA_ERRORS"
        assert twin["result"] == "valid"
        assert result == VERIFIED
    elif tc in POLICY_REJECTS:
        reason, why = POLICY_REJECTS[tc]
        assert test["result"] == "valid", "only valid vectors belong in POLICY_REJECTS"
        assert result.startswith(reason), f"expected '{reason}' ({why}), got '{result}'"
    elif test["result"] == "valid":
        assert result == VERIFIED, f"valid vector rejected: {result}"
    else:
        assert test["result"] == "invalid"
        assert result != VERIFIED, f"invalid vector accepted ({test['comment']})"


def test_jws_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """How many vectors ran with Wycheproof's verdict, and how many were set aside, why."""
    require_wycheproof(JWS_FILE)
    tally: collections.Counter[str] = collections.Counter()
    for group in JWS_GROUPS:
        lookup = group_lookup(_group_key(group))
        for test in group["tests"]:
            tc = test["tcId"]
            result = outcome(test["jws"], lookup)
            if tc in DATA_ERRORS:
                tally["data error: duplicate of a valid vector"] += 1
            elif tc in POLICY_REJECTS:
                tally[f"valid, rejected by policy: {POLICY_REJECTS[tc][1]}"] += 1
            elif test["result"] == "valid":
                tally["ran: valid, verified" if result == VERIFIED else "FAILED: valid"] += 1
            else:
                tally["ran: invalid, rejected" if result != VERIFIED else "FAILED: invalid"] += 1
    with capsys.disabled():
        print(f"\nWycheproof {JWS_FILE}:")
        for name, count in sorted(tally.items()):
            print(f"  {count:4d}  {name}")
    assert dict(tally) == {
        "ran: valid, verified": 15,
        "ran: invalid, rejected": 353,
        "valid, rejected by policy: algorithm outside EdDSA/ES256/RS256/HS256": 21,
        "valid, rejected by policy: empty payload segment (a JWT always has claims)": 6,
        "valid, rejected by policy: kid outside [A-Za-z0-9_-]{1,128}": 2,
        "valid, rejected by policy: character outside the base64url alphabet": 2,
        "data error: duplicate of a valid vector": 2,
    }
    assert sum(tally.values()) == 401


def test_policy_lists_are_disjoint_and_name_valid_vectors() -> None:
    require_wycheproof(JWS_FILE)
    lists = [UNSUPPORTED_ALG, EMPTY_PAYLOAD, KID_CHARSET, NON_BASE64URL_CHARACTER]
    assert sum(map(len, lists)) == len(set().union(*lists)) == len(POLICY_REJECTS) == 31
    assert all(JWS_BY_ID[tc]["result"] == "valid" for tc in POLICY_REJECTS)
    assert all(JWS_BY_ID[tc]["result"] == "invalid" for tc in DATA_ERRORS)


def test_intended_padding_vectors() -> None:
    """What tcIds 367/370 meant: 357 with '=' padding on the payload or the signature."""
    require_wycheproof(JWS_FILE)
    [group] = [g for g in JWS_GROUPS if any(t["tcId"] == 357 for t in g["tests"])]
    lookup = group_lookup(_group_key(group))
    h, p, s = JWS_BY_ID[357]["jws"].split(".")
    assert outcome(f"{h}.{p}.{s}", lookup) == VERIFIED
    for padded in (f"{h}.{p}==.{s}", f"{h}.{p}.{s}=", f"{h}=.{p}.{s}"):
        assert outcome(padded, lookup) == "not a compact JWS"


def test_payload_reasons_are_only_reached_after_the_signature_verifies() -> None:
    """The ordering ``outcome`` relies on: a non-JSON payload is reported as such only
    when the signature is good; with a bad signature the reason is the signature."""
    key = codec.generate_jwk("HS256")
    secret = key.private_key
    assert isinstance(secret, bytes)

    def lookup(kid: str) -> tuple[Jwk, Algorithm] | None:
        return (key, "HS256") if kid == "k" else None

    for payload in (b"foo", b"[]", b'{"a":1,"a":2}'):
        head, body = segment({"alg": "HS256", "kid": "k"}), segment(payload)
        mac = hmac_sign(secret, f"{head}.{body}".encode())
        good = f"{head}.{body}.{segment(mac)}"
        bad = f"{head}.{body}.{segment(bytes(32))}"
        with pytest.raises(InvalidToken) as caught:
            codec.decode_compact(good, lookup, typ=None)
        assert caught.value.reason.startswith(PAYLOAD_REASONS)
        assert outcome(good, lookup) == VERIFIED
        assert outcome(bad, lookup).startswith("signature")


# --- KEY-04: json_web_key_test.json against our key loader ------------------------------------

REFUSED = "REFUSED"
"""The loader (``codec.jwk_from_json`` for the JWK's ``alg``) refused a key of the set."""
NOT_VERIFIED = "NOT_VERIFIED"
"""Refused by the loader or rejected by the verifier: either way, no valid signature."""

KEY_EXPECTED: dict[int, str] = {
    2: VERIFIED,  # two HS256 keys, selected by kid
    3: NOT_VERIFIED,  # modified signature
    5: VERIFIED,  # RS256
    13: VERIFIED,  # HS256 with a 65-byte key
    6: REFUSED,  # alg RSA1_5 / use enc
    8: REFUSED,  # RSA 1024 bits (KEY-02)
    9: REFUSED,  # e = 1
    10: REFUSED,  # HS256 key of 31 bytes (KEY-01)
    11: REFUSED,  # HS384 (unsupported)
    12: REFUSED,  # HS512 (unsupported)
    16: REFUSED,  # empty HS256 key (joserfc CVE-2026-49852)
    17: REFUSED,
    18: REFUSED,
    19: REFUSED,  # alg ES521
    20: REFUSED,  # alg ES224
    21: NOT_VERIFIED,  # ES256 key with use "enc": loads; joserfc refuses it when verifying
    22: REFUSED,  # point not on the curve
    23: REFUSED,  # wrong curve
    24: NOT_VERIFIED,  # kty "RSA" on an EC key (ECKey.import_key ignores kty)
    25: REFUSED,  # A256GCM key
    26: REFUSED,  # A256KW key
}
KEY_POLICY = {14: "HS384 is not an algorithm we support", 15: "HS512 is not one either"}
KEY_NOT_APPLICABLE = {
    1: "MixedKeySet: velvetrope never loads a foreign JWKS; each KeyRecord holds one "
    "private key, and the published JWKS is built from them (public keys only)",
    4: "DuplicateKid: keys are named by their RFC 7638 thumbprint when generated, and the "
    "key stores are keyed by kid, so a ring cannot hold two keys under one kid",
    7: "ROCA: cryptography has no ROCA check; our RSA keys are generated by OpenSSL and "
    "never imported",
}


def load_key_set(keys: list[dict[str, Any]]) -> tuple[dict[str, tuple[Jwk, Algorithm]], str]:
    """Import every key as our loader would: ``(by_kid, "")``, or ``({}, why)`` if refused.

    Warnings are recorded, not raised: in production joserfc's ``SecurityWarning`` for a
    short RSA key is only a warning, and the key loads.
    """
    loaded: dict[str, tuple[Jwk, Algorithm]] = {}
    for key in keys:
        alg = _ALGORITHMS.get(str(key.get("alg")))
        if alg is None:
            return {}, f"unsupported alg {key.get('alg')!r}"
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            try:
                jwk = codec.jwk_from_json(json.dumps(key), alg)
            except Exception as exc:  # noqa: BLE001 - any error from the loader is a refusal
                return {}, f"{type(exc).__name__}: {exc}"
        loaded[str(key.get("kid"))] = (jwk, alg)
    return loaded, ""


JWK = load_wycheproof(JWK_FILE)
JWK_PARAMS = [
    pytest.param(group, test, id=f"tc{test['tcId']:02d}-{group['comment']}")
    for group in ([] if JWK is None else JWK["testGroups"])
    for test in group["tests"]
]


def key_outcome(group: dict[str, Any], test: dict[str, Any]) -> tuple[str, str]:
    keys = (group.get("public") or group["private"])["keys"]
    loaded, refusal = load_key_set(keys)
    if refusal:
        return REFUSED, refusal
    token = test["jws"]

    def lookup(kid: str) -> tuple[Jwk, Algorithm] | None:
        return loaded.get(kid)

    result = outcome(token, lookup)
    kinds = ", ".join(f"{type(k).__name__}/{a}" for k, a in loaded.values())
    return (VERIFIED if result == VERIFIED else "REJECTED"), f"loaded {kinds}; codec: {result}"


@pytest.mark.parametrize(("group", "test"), JWK_PARAMS)
def test_KEY_04_key_vector(group: dict[str, Any], test: dict[str, Any]) -> None:
    tc = test["tcId"]
    if tc in KEY_NOT_APPLICABLE:
        pytest.skip(f"not applicable: {KEY_NOT_APPLICABLE[tc]}")
    got, detail = key_outcome(group, test)
    if tc in KEY_POLICY:
        assert test["result"] == "valid"
        assert got == REFUSED, f"{KEY_POLICY[tc]}, yet: {detail}"
        return
    expected = KEY_EXPECTED[tc]
    if expected == NOT_VERIFIED:
        assert got != VERIFIED, f"{test['comment']} ({group['comment']}) verified: {detail}"
    else:
        assert got == expected, f"{test['comment']} ({group['comment']}): {expected}? {detail}"


def test_KEY_04_summary() -> None:
    require_wycheproof(JWK_FILE)
    ids = {p.values[1]["tcId"] for p in JWK_PARAMS}  # type: ignore[index]
    assert len(ids) == 26
    assert set(KEY_EXPECTED) | set(KEY_POLICY) | set(KEY_NOT_APPLICABLE) == ids
    assert not set(KEY_EXPECTED) & set(KEY_POLICY)
    assert not (set(KEY_EXPECTED) | set(KEY_POLICY)) & set(KEY_NOT_APPLICABLE)
    assert len(KEY_EXPECTED) == 21
