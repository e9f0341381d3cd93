"""Format rows: DUP and JSON parser differentials (JWT-08, JWT-20), FMT compact
serialization only (JWT-05), SIZE (JWT-17, OPS-03)."""

from __future__ import annotations

import base64
import json
import logging

import httpx
import pytest

from tests.tokens.attacks.helpers import COOKIE, raw_json
from tests.tokens.conftest import (
    Case,
    Forger,
    accept_each,
    assert_core_rejected,
    assert_http_rejected,
    b64url,
    reject_each,
    segment,
    unb64url,
    without,
)

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


# --- FMT (JWT-05) -----------------------------------------------------------------------------


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


# --- SIZE (JWT-17, OPS-03) --------------------------------------------------------------------


@pytest.mark.parametrize("size", [8193, 100 * 1024, 1024 * 1024], ids=["8KiB+1", "100KiB", "1MiB"])
async def test_JWT_17_SIZE_oversized_bearer_tokens_are_rejected_before_decoding(
    forger: Forger, client: httpx.AsyncClient, size: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused before any decoding, and the token never reaches a log line."""
    third = size // 3
    token = f"{'A' * third}.{'B' * third}.{'C' * (size - 2 * third - 2)}"
    assert len(token) == size
    caplog.set_level(logging.DEBUG)
    await assert_core_rejected(forger.service, token, "too large")  # the first check
    await assert_http_rejected(client, token)
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
    """Refused by the request limits, before any route or credential check runs."""
    response = await client.get("/auth/me", headers={"Cookie": f"{COOKIE}={'A' * size}"})
    assert response.status_code == 431, response.text
    assert response.json()["error"] == "header_too_large"
    assert "AAAAAAAA" not in response.text
