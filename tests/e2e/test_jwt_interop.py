"""velvetrope's JWTs over real HTTP, verified by an independent implementation (PyJWT).

``velvetrope serve --port 0`` runs as a subprocess (the ``servers`` fixture of
``tests/e2e/conftest.py``); a client registers, gets tokens from ``POST /auth/token``,
verifies the access token with PyJWT against ``/.well-known/jwks.json``, uses it, rotates
the refresh token, replays it (RT-03) and revokes tokens (RFC 7009).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.support.server import Servers, register
from tests.support.services import PASSWORD

pytestmark = pytest.mark.e2e

EMAIL = "interop@example.com"
REQUIRED = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]
INVALID_TOKEN_CHALLENGE = 'Bearer realm="velvetrope", error="invalid_token"'


def password_grant(http: httpx.Client, email: str = EMAIL) -> dict[str, Any]:
    response = http.post(
        "/auth/token", data={"grant_type": "password", "username": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert body["token_type"] == "Bearer"
    return body


def refresh_grant(http: httpx.Client, refresh_token: str) -> httpx.Response:
    return http.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


def me(http: httpx.Client, access_token: str) -> httpx.Response:
    return http.get("/auth/me", headers={"Authorization": f"Bearer {access_token}"})


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"] == INVALID_TOKEN_CHALLENGE


def assert_invalid_grant(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


def test_access_token_verifies_with_pyjwt_and_the_published_jwks(
    servers: Servers, database: Path
) -> None:
    """KEY-05 and interop: PyJWT's ``PyJWKClient`` finds the key by ``kid`` in our JWKS and
    ``jwt.decode`` accepts the token for ``audience=issuer=`` the server's origin.

    With ``--port 0`` and no public origin, the origin is ``http://127.0.0.1:<real port>``:
    that is what ``iss`` and ``aud`` must say (not the configured port 0).
    """
    server = servers.start(database)
    origin = server.base_url
    assert origin is not None
    assert origin.startswith("http://127.0.0.1:")
    with server.client() as http:
        register(http, EMAIL)
        tokens = password_grant(http)
        access = tokens["access_token"]
        assert 0 < tokens["expires_in"] <= 15 * 60

        jwks = jwt.PyJWKClient(f"{origin}/.well-known/jwks.json", timeout=10)
        signing_key = jwks.get_signing_key_from_jwt(access)
        header = jwt.get_unverified_header(access)
        assert header == {"alg": "EdDSA", "typ": "at+jwt", "kid": signing_key.key_id}

        # Signature, lifetime and claim presence first, so that an iss/aud mismatch
        # below cannot hide a signature problem (or the other way round).
        claims = jwt.decode(
            access,
            signing_key.key,
            algorithms=["EdDSA"],
            options={"require": REQUIRED, "verify_aud": False, "verify_iss": False},
        )
        assert claims["exp"] - claims["iat"] <= 15 * 60
        assert claims["nbf"] == claims["iat"]
        assert claims["iss"] == origin, f"iss is {claims['iss']!r}, the server is at {origin}"
        assert claims["aud"] == origin, f"aud is {claims['aud']!r}, the server is at {origin}"
        verified = jwt.decode(
            access,
            signing_key.key,
            algorithms=["EdDSA"],
            audience=origin,
            issuer=origin,
            options={"require": REQUIRED},
        )
        assert verified == claims

        who = me(http, access)
        assert who.status_code == 200, who.text
        assert who.json()["id"] == claims["sub"]
        assert who.json()["email"] == EMAIL
        assert who.json()["session"]["id"] == claims["sid"]

        # PyJWT refuses the token for the wrong audience or algorithm list: the checks above
        # are real checks.
        with pytest.raises(jwt.InvalidAudienceError):
            jwt.decode(access, signing_key.key, algorithms=["EdDSA"], audience="https://x.example")
        with pytest.raises(jwt.InvalidAlgorithmError):
            jwt.decode(access, signing_key.key, algorithms=["RS256"], audience=origin)


def test_RT_02_RT_03_refresh_rotation_and_reuse_revokes_the_family(
    servers: Servers, database: Path
) -> None:
    """With no grace window, replaying a rotated refresh token is theft: the family ends —
    the refresh token it was rotated to, and both access tokens, including the one issued
    with the new refresh token."""
    server = servers.start(database, env={"VELVETROPE_REFRESH_GRACE": "0"})
    with server.client() as http:
        register(http, EMAIL)
        first = password_grant(http)
        assert me(http, first["access_token"]).status_code == 200

        rotated = refresh_grant(http, first["refresh_token"])
        assert rotated.status_code == 200, rotated.text
        second = rotated.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        assert me(http, second["access_token"]).status_code == 200

        assert_invalid_grant(refresh_grant(http, first["refresh_token"]))  # the replay

        assert_invalid_grant(refresh_grant(http, second["refresh_token"]))
        assert_invalid_token(me(http, second["access_token"]))
        assert_invalid_token(me(http, first["access_token"]))

        # A new sign-in is unaffected: the revocation is per family, not per user.
        fresh = password_grant(http)
        assert me(http, fresh["access_token"]).status_code == 200


def test_RFC_7009_revoked_tokens_are_refused_on_the_next_request(
    servers: Servers, database: Path
) -> None:
    """JWT-15/TERM-02: revoking an access token denies it at once; revoking a refresh token
    ends its family, access tokens included. The endpoint answers 200 either way."""
    server = servers.start(database)
    with server.client() as http:
        register(http, EMAIL)
        tokens = password_grant(http)
        assert me(http, tokens["access_token"]).status_code == 200

        revoked = http.post("/auth/revoke", data={"token": tokens["access_token"]})
        assert revoked.status_code == 200, revoked.text
        assert_invalid_token(me(http, tokens["access_token"]))

        other = password_grant(http)
        assert me(http, other["access_token"]).status_code == 200
        revoked = http.post("/auth/revoke", data={"token": other["refresh_token"]})
        assert revoked.status_code == 200, revoked.text
        assert_invalid_grant(refresh_grant(http, other["refresh_token"]))
        assert_invalid_token(me(http, other["access_token"]))

        unknown = http.post("/auth/revoke", data={"token": "not-a-token-we-issued"})
        assert unknown.status_code == 200, unknown.text


def test_JWT_17_oversized_bearer_tokens_over_real_http_are_refused_quickly(
    servers: Servers, database: Path
) -> None:
    """Through uvicorn's real HTTP parser, 100 KiB and 1 MiB bearer tokens: a 4xx (the
    app's 401, or the server's own refusal of a huge header), fast, no echo, and the
    server keeps serving."""
    server = servers.start(database)
    with server.client() as http:
        for size in (100 * 1024, 1024 * 1024):
            started = time.perf_counter()
            response = http.get("/auth/me", headers={"Authorization": "Bearer " + "A" * size})
            elapsed = time.perf_counter() - started
            assert 400 <= response.status_code < 500, (size, response.text[:200])
            if response.status_code == 401:
                assert response.json()["error"] == "invalid_token"
            assert "AAAAAAAA" not in response.text
            assert elapsed < 2.0, (size, elapsed)
        assert http.get("/health").status_code == 200
