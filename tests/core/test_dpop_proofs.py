"""DPoP proof verification (RFC 9449 section 4.3) in core: every check, attacked."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import pytest

from tests.support.proofs import ProofKey, b64, forge, jws
from velvetrope import FrozenClock
from velvetrope.core.binding.dpop import (
    DPoPPolicy,
    DPoPProofs,
    access_token_hash,
    normalise_htu,
)
from velvetrope.core.tokens import codec
from velvetrope.errors import InvalidDPoPProof, InvalidToken, UseDPoPNonce
from velvetrope.stores import MemoryStores

HTU = "https://auth.example.com/auth/me"
SECRET = b"n" * 32


@pytest.fixture
def proofs(clock: FrozenClock) -> DPoPProofs:
    verifier = DPoPProofs(MemoryStores().one_time, DPoPPolicy(), now=clock)
    verifier.use_secret(SECRET)
    return verifier


@pytest.fixture
def key() -> ProofKey:
    return ProofKey()


def claims(clock: FrozenClock, **changes: Any) -> dict[str, Any]:
    base = {"htm": "GET", "htu": HTU, "iat": int(clock().timestamp()), "jti": b64(b"j" * 16)}
    return {**base, **changes}


async def refused(proofs: DPoPProofs, proof: str, **checks: Any) -> str:
    """The reason ``proof`` is refused as invalid_dpop_proof (with the DPoP challenge)."""
    with pytest.raises(InvalidDPoPProof) as caught:
        await proofs.verify(
            proof, htm=checks.pop("htm", "GET"), htu=checks.pop("htu", HTU), **checks
        )
    assert caught.value.challenge is not None
    assert caught.value.challenge.startswith('DPoP error="invalid_dpop_proof", algs="')
    return caught.value.reason


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256", "PS256"])
async def test_DPOP_01_a_good_proof_passes_with_each_asymmetric_alg(
    clock: FrozenClock, alg: Any
) -> None:
    key = ProofKey(alg)
    verifier = DPoPProofs(MemoryStores().one_time, now=clock)
    verified = await verifier.verify(key.sign(claims(clock)), htm="GET", htu=HTU)
    assert verified.jkt == key.jkt


async def test_DPOP_01_alg_none_and_hs256_are_refused(
    proofs: DPoPProofs, key: ProofKey, clock: FrozenClock
) -> None:
    header = {"typ": "dpop+jwt", "jwk": key.public}
    for alg in ("none", "None", "NONE"):
        assert await refused(proofs, jws({**header, "alg": alg}, claims(clock))) in {
            "alg not allowed",
            "not a compact JWS",
        }
    hs256 = forge({**header, "alg": "HS256"}, claims(clock), b"k" * 32)
    assert await refused(proofs, hs256) == "alg not allowed"


async def test_DPOP_01_typ_must_be_dpop_jwt(
    proofs: DPoPProofs, key: ProofKey, clock: FrozenClock
) -> None:
    for typ in ("jwt", "at+jwt", "dbsc+jwt"):
        assert await refused(proofs, key.sign(claims(clock), typ=typ)) == "wrong typ"


async def test_DPOP_01_private_key_material_in_the_header_is_refused(
    proofs: DPoPProofs, key: ProofKey, clock: FrozenClock
) -> None:
    good = key.sign(claims(clock))
    _, payload_b64, signature = good.split(".")
    header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": key.private}
    leaked = ".".join([b64(json.dumps(header).encode()), payload_b64, signature])
    assert await refused(proofs, leaked) == "jwk holds private key material"


async def test_DPOP_01_a_key_by_reference_or_of_the_wrong_type_is_refused(
    proofs: DPoPProofs, key: ProofKey, clock: FrozenClock
) -> None:
    other = ProofKey("EdDSA")
    cases: dict[str, dict[str, Any]] = {
        "header member not allowed: jku": {"jku": "https://attacker.example/jwks"},
        "header member not allowed: x5c": {"x5c": ["MIIB"]},
        "header member not allowed: kid": {"kid": "abc"},
        "jwk kty does not match alg": {"jwk": other.public},
    }
    for reason, change in cases.items():
        header: dict[str, Any] = {"alg": "ES256", "typ": "dpop+jwt", "jwk": key.public, **change}
        assert await refused(proofs, jws(header, claims(clock), b"\x01" * 64)) == reason


async def test_DPOP_01_a_signature_by_another_key_is_refused(
    proofs: DPoPProofs, key: ProofKey, clock: FrozenClock
) -> None:
    mine = key.sign(claims(clock))
    theirs = ProofKey().sign(claims(clock))
    swapped = ".".join([*mine.split(".")[:2], theirs.split(".")[2]])
    assert (await refused(proofs, swapped)).startswith("signature")


async def test_DPOP_02_htm_and_htu_must_name_this_request(
    proofs: DPoPProofs, key: ProofKey, clock: FrozenClock
) -> None:
    assert await refused(proofs, key.sign(claims(clock, htm="POST"))) == "htm does not match"
    other = claims(clock, htu="https://auth.example.com/auth/sessions")
    assert await refused(proofs, key.sign(other)) == "htu does not match"
    host = claims(clock, htu="https://evil.example.com/auth/me")
    assert await refused(proofs, key.sign(host)) == "htu does not match"


async def test_DPOP_02_htu_is_compared_normalised_without_query_or_fragment(
    proofs: DPoPProofs, key: ProofKey, clock: FrozenClock
) -> None:
    spelled = "HTTPS://Auth.Example.COM:443/auth/%6de?x=1#frag"
    verified = await proofs.verify(key.sign(claims(clock, htu=spelled)), htm="GET", htu=HTU)
    assert verified.jkt == key.jkt
    assert normalise_htu("http://a.example:80") == "http://a.example/"
    assert normalise_htu("https://user@a.example/") is None
    assert normalise_htu("ftp://a.example/") is None


async def test_DPOP_03_iat_must_be_fresh(
    proofs: DPoPProofs, key: ProofKey, clock: FrozenClock
) -> None:
    now = clock().timestamp()
    assert await refused(proofs, key.sign(claims(clock, iat=now - 61))) == "iat too old"
    assert await refused(proofs, key.sign(claims(clock, iat=now + 6))) == "iat in the future"
    assert await refused(proofs, key.sign(claims(clock, iat="1"))) == "iat is not a number"
    edge = key.sign(claims(clock, iat=now - 60))
    assert (await proofs.verify(edge, htm="GET", htu=HTU)).jkt == key.jkt


async def test_DPOP_04_a_proof_is_accepted_once(
    proofs: DPoPProofs, key: ProofKey, clock: FrozenClock
) -> None:
    proof = key.sign(claims(clock))
    await proofs.verify(proof, htm="GET", htu=HTU)
    assert await refused(proofs, proof) == "replayed jti"
    clock.advance(timedelta(seconds=30))
    assert await refused(proofs, proof) == "replayed jti"


async def test_DPOP_04_the_replay_cache_is_the_shared_store(
    key: ProofKey, clock: FrozenClock
) -> None:
    shared = MemoryStores().one_time
    node_a, node_b = DPoPProofs(shared, now=clock), DPoPProofs(shared, now=clock)
    proof = key.sign(claims(clock))
    await node_a.verify(proof, htm="GET", htu=HTU)
    assert await refused(node_b, proof) == "replayed jti"


async def test_DPOP_04_a_refused_proof_spends_nothing(
    proofs: DPoPProofs, key: ProofKey, clock: FrozenClock
) -> None:
    proof = key.sign(claims(clock))
    assert await refused(proofs, proof, htm="POST") == "htm does not match"
    assert (await proofs.verify(proof, htm="GET", htu=HTU)).jkt == key.jkt


async def test_DPOP_05_nonces_are_asked_for_then_accepted_and_rotate(
    key: ProofKey, clock: FrozenClock
) -> None:
    policy = DPoPPolicy(nonce=True, nonce_period=timedelta(minutes=5))
    proofs = DPoPProofs(MemoryStores().one_time, policy, now=clock)
    proofs.use_secret(SECRET)
    with pytest.raises(UseDPoPNonce) as asked:
        await proofs.verify(key.sign(claims(clock)), htm="GET", htu=HTU)
    assert asked.value.challenge is not None
    assert 'error="use_dpop_nonce"' in asked.value.challenge
    nonce = asked.value.nonce
    await proofs.verify(key.sign(claims(clock, nonce=nonce, jti="a" * 22)), htm="GET", htu=HTU)
    clock.advance(timedelta(minutes=5))  # the previous period's nonce still passes
    fresh = claims(clock, nonce=nonce, jti="b" * 22)
    await proofs.verify(key.sign(fresh), htm="GET", htu=HTU)
    clock.advance(timedelta(minutes=5))
    with pytest.raises(UseDPoPNonce):
        await proofs.verify(key.sign(claims(clock, nonce=nonce, jti="c" * 22)), htm="GET", htu=HTU)
    forged = claims(clock, nonce=b64(b"\x00" * 24), jti="d" * 22)
    with pytest.raises(UseDPoPNonce):
        await proofs.verify(key.sign(forged), htm="GET", htu=HTU)


async def test_DPOP_06_ath_must_hash_the_token_it_travels_with(
    proofs: DPoPProofs, key: ProofKey, clock: FrozenClock
) -> None:
    proof = key.sign(claims(clock, ath=access_token_hash("token-a")))
    assert await refused(proofs, proof, access_token="token-b") == "ath does not match"
    missing = key.sign(claims(clock, jti="m" * 22))
    assert await refused(proofs, missing, access_token="token-a") == "ath missing"


async def test_DPOP_06_a_proof_by_another_key_than_the_tokens_is_invalid_token(
    proofs: DPoPProofs, key: ProofKey, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    thief = ProofKey()
    proof = thief.sign(claims(clock, ath=access_token_hash("stolen")))
    with caplog.at_level(logging.INFO, "velvetrope.events"), pytest.raises(InvalidToken) as caught:
        await proofs.verify(proof, htm="GET", htu=HTU, access_token="stolen", bound_to=key.jkt)
    assert not isinstance(caught.value, InvalidDPoPProof)
    assert caught.value.reason == "key binding"
    assert caught.value.challenge == ('DPoP error="invalid_token", algs="ES256 EdDSA RS256 PS256"')
    assert "event=dpop_proof_refused reason=key binding" in caplog.text


def test_DPOP_08_other_tokens_still_refuse_an_embedded_jwk(key: ProofKey) -> None:
    token = key.sign({"sub": "x"}, typ="at+jwt")
    with pytest.raises(InvalidToken) as caught:
        codec.decode_compact(token, lambda _: None, typ="at+jwt")
    assert caught.value.reason == "header member not allowed: jwk"


def test_DPOP_09_the_policy_bounds_its_settings() -> None:
    with pytest.raises(ValueError, match="window"):
        DPoPPolicy(window=timedelta(hours=1))
    with pytest.raises(ValueError, match="algorithms"):
        DPoPPolicy(algorithms=("HS256",))  # type: ignore[arg-type]
