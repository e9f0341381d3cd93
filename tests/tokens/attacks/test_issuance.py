"""What velvetrope issues: KEY-01, KEY-02, KEY-05."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from tests.support.services import ORIGIN, PASSWORD
from tests.support.stores import every_backend
from tests.tokens.attacks.helpers import forger_on
from tests.tokens.conftest import ServiceFactory, b64url, decode_part, http_client, unb64url
from velvetrope import AuthService
from velvetrope.core.tokens import codec
from velvetrope.core.tokens.codec import Jwk

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


EXPECTED_CLAIMS = {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "client_id", "email"}


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


@every_backend
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
