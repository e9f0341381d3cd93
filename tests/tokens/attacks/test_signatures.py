"""The signature rows: PSY and DER ECDSA encodings (JWT-16), MALL the high-S twin and the
denylist (TERM-02), NULLSIG."""

from __future__ import annotations

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.support.stores import every_backend
from tests.tokens.attacks.helpers import N
from tests.tokens.conftest import (
    Case,
    Forger,
    assert_http_accepted,
    assert_rejected,
    b64url,
    bearer,
    hmac_sign,
    http_client,
    reject_each,
    segment,
    unb64url,
)

# --- PSY and DER: ECDSA signature encoding (JWT-16) -------------------------------------------


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


# --- MALL: the high-S twin and the denylist (TERM-02) -----------------------------------------


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


@every_backend
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


@every_backend
async def test_TERM_02_revoking_the_twin_also_kills_the_original(es256_forger: Forger) -> None:
    service, original = es256_forger.service, es256_forger.genuine
    twin = high_s_twin(original)
    async with http_client(service) as client:
        revoked = await client.post("/auth/revoke", data={"token": twin})
        assert revoked.status_code == 200, revoked.text
        await assert_rejected(service, client, original, "revoked")


# --- NULLSIG ----------------------------------------------------------------------------------


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
