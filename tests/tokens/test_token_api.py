"""The token endpoint, revocation and bearer access over HTTP (RFC 6749, 6750, 7009)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.support.services import ORIGIN, PASSWORD, TOKEN_POLICY
from velvetrope import AuthService, FrozenClock
from velvetrope.core.tokens import codec


async def get_tokens(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    response = await client.post(
        "/auth/token", data={"grant_type": "password", "username": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_password_grant_returns_an_rfc6749_token_response(
    client: httpx.AsyncClient, user_email: str
) -> None:
    response = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": user_email, "password": PASSWORD},
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == int(TOKEN_POLICY.access_ttl.total_seconds())
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert "set-cookie" not in response.headers  # tokens in the body only in bearer mode


async def test_password_grant_accepts_json_too(client: httpx.AsyncClient, user_email: str) -> None:
    response = await client.post(
        "/auth/token",
        json={"grant_type": "password", "username": user_email, "password": PASSWORD},
    )
    assert response.status_code == 200


async def test_KEY_05_access_tokens_carry_the_rfc9068_claims(
    client: httpx.AsyncClient, user_email: str, service: AuthService
) -> None:
    tokens = await get_tokens(client, user_email)
    header_b64, payload_b64, _ = tokens["access_token"].split(".")
    header = codec.loads_strict(codec._b64decode(header_b64))
    claims = codec.loads_strict(codec._b64decode(payload_b64))
    assert header == {"alg": "EdDSA", "typ": "at+jwt", "kid": service.tokens.keys.signing_key.kid}
    registered = {"iss", "aud", "sub", "client_id", "sid", "jti", "iat", "nbf", "exp"}
    assert set(claims) == {*registered, "email"}  # and no application claims without a hook
    assert claims["email"] == user_email
    assert claims["iss"] == claims["aud"] == ORIGIN
    assert claims["exp"] - claims["iat"] == TOKEN_POLICY.access_ttl.total_seconds()
    assert len(claims["jti"]) >= 22


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        (
            {"grant_type": "password", "username": "ann@example.com", "password": "wrong!"},
            400,
            "invalid_grant",
        ),
        (
            {"grant_type": "password", "username": "nobody@example.com", "password": PASSWORD},
            400,
            "invalid_grant",
        ),
        ({"grant_type": "password", "username": "ann@example.com"}, 400, "invalid_request"),
        ({"grant_type": "refresh_token"}, 400, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "nope"}, 400, "invalid_grant"),
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"username": "ann@example.com"}, 400, "invalid_request"),
    ],
)
async def test_token_errors_use_the_rfc6749_shape(
    client: httpx.AsyncClient, user_email: str, data: dict[str, str], status: int, error: str
) -> None:
    response = await client.post("/auth/token", data=data)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    if status == 400:
        assert body["error_description"] == body["detail"]


async def test_bearer_token_reaches_protected_routes(
    client: httpx.AsyncClient, user_email: str
) -> None:
    tokens = await get_tokens(client, user_email)
    me = await client.get("/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == user_email
    devices = await client.get("/auth/sessions", headers=bearer(tokens["access_token"]))
    [device] = devices.json()
    assert device["current"] is True
    assert device["id"] == me.json()["session"]["id"]


async def test_devices_list_shows_sessions_and_token_families_together(
    signed_in: httpx.AsyncClient, user_email: str
) -> None:
    tokens = await get_tokens(signed_in, user_email)
    devices = (await signed_in.get("/auth/sessions")).json()
    assert len(devices) == 2
    [family] = [d for d in devices if not d["current"]]
    response = await signed_in.delete(f"/auth/sessions/{family['id']}")  # recent sign-in
    assert response.status_code == 204
    after = await signed_in.get("/auth/me", headers=bearer(tokens["access_token"]))
    assert after.status_code == 401  # its outstanding access token died with it
    refresh = await signed_in.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refresh.json()["error"] == "invalid_grant"


async def test_TERM_01_bearer_logout_revokes_the_family_and_the_token_at_once(
    client: httpx.AsyncClient, user_email: str
) -> None:
    tokens = await get_tokens(client, user_email)
    assert (
        await client.post("/auth/logout", headers=bearer(tokens["access_token"]))
    ).status_code == 204
    assert (await client.get("/auth/me", headers=bearer(tokens["access_token"]))).status_code == 401
    refresh = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refresh.status_code == 400


async def test_rfc7009_revoke_answers_200_for_anything_and_revokes_real_tokens(
    client: httpx.AsyncClient, user_email: str
) -> None:
    tokens = await get_tokens(client, user_email)
    for junk in ("junk", "a.b.c", "A" * 43):
        assert (await client.post("/auth/revoke", data={"token": junk})).status_code == 200
    assert (await client.get("/auth/me", headers=bearer(tokens["access_token"]))).status_code == 200
    revoked = await client.post("/auth/revoke", data={"token": tokens["access_token"]})
    assert revoked.status_code == 200
    assert (await client.get("/auth/me", headers=bearer(tokens["access_token"]))).status_code == 401
    assert (
        await client.post("/auth/revoke", data={"token": tokens["refresh_token"]})
    ).status_code == 200
    refresh = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refresh.status_code == 400


async def test_TERM_03_logout_all_cuts_off_every_token_and_session(
    client: httpx.AsyncClient, signed_in: httpx.AsyncClient, user_email: str
) -> None:
    one = await get_tokens(client, user_email)
    two = await get_tokens(client, user_email)
    assert (await signed_in.post("/auth/logout-all")).status_code == 204
    for tokens in (one, two):
        assert (
            await client.get("/auth/me", headers=bearer(tokens["access_token"]))
        ).status_code == 401
        refresh = await client.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert refresh.status_code == 400
    assert (await signed_in.get("/auth/me")).status_code == 401


async def test_TERM_03_password_change_over_bearer_ends_every_token(
    client: httpx.AsyncClient, user_email: str
) -> None:
    tokens = await get_tokens(client, user_email)
    other = await get_tokens(client, user_email)
    changed = await client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": "a completely new passphrase"},
        headers=bearer(tokens["access_token"]),
    )
    assert changed.status_code == 204
    for gone in (tokens, other):
        assert (
            await client.get("/auth/me", headers=bearer(gone["access_token"]))
        ).status_code == 401
    fresh = await client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": user_email,
            "password": "a completely new passphrase",
        },
    )
    assert fresh.status_code == 200
    assert (
        await client.get("/auth/me", headers=bearer(fresh.json()["access_token"]))
    ).status_code == 200


async def test_TERM_04_disabling_a_user_rejects_their_token_on_the_next_request(
    client: httpx.AsyncClient, user_email: str, service: AuthService
) -> None:
    tokens = await get_tokens(client, user_email)
    user = await service.users.find(user_email)
    await service.disable_user(user.id)
    assert (await client.get("/auth/me", headers=bearer(tokens["access_token"]))).status_code == 401


async def test_access_token_expires_after_its_ttl_plus_leeway(
    client: httpx.AsyncClient, user_email: str, clock: FrozenClock
) -> None:
    tokens = await get_tokens(client, user_email)
    clock.advance(TOKEN_POLICY.access_ttl + TOKEN_POLICY.leeway - timedelta(seconds=1))
    assert (await client.get("/auth/me", headers=bearer(tokens["access_token"]))).status_code == 200
    clock.advance(timedelta(seconds=1))
    assert (await client.get("/auth/me", headers=bearer(tokens["access_token"]))).status_code == 401


async def test_jwks_serves_public_keys_only_with_cache_headers(
    client: httpx.AsyncClient, service: AuthService
) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert "max-age" in response.headers["cache-control"]
    [key] = response.json()["keys"]
    assert key["kid"] == service.tokens.keys.signing_key.kid
    assert key["alg"] == "EdDSA"
    assert key["use"] == "sig"
    assert "d" not in key  # no private part


async def test_key_rotation_keeps_old_tokens_valid_and_publishes_both_keys(
    client: httpx.AsyncClient, user_email: str, service: AuthService
) -> None:
    before = await get_tokens(client, user_email)
    old_kid = service.tokens.keys.signing_key.kid
    await service.tokens.keys.rotate()
    kids = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert old_kid in kids
    assert len(kids) == 2
    assert (await client.get("/auth/me", headers=bearer(before["access_token"]))).status_code == 200
    after = await get_tokens(client, user_email)
    assert (
        codec.loads_strict(codec._b64decode(after["access_token"].split(".")[0]))["kid"] != old_kid
    )


async def test_bearer_header_wins_over_the_cookie(
    signed_in: httpx.AsyncClient,
) -> None:
    response = await signed_in.get("/auth/me", headers=bearer("not-a-token"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert (
        response.headers["www-authenticate"] == 'Bearer realm="velvetrope", error="invalid_token"'
    )


async def test_bearer_clients_cannot_use_session_reauth(
    client: httpx.AsyncClient, user_email: str
) -> None:
    tokens = await get_tokens(client, user_email)
    response = await client.post(
        "/auth/reauth", json={"password": PASSWORD}, headers=bearer(tokens["access_token"])
    )
    assert response.status_code == 422
    assert "grant_type=password" in response.json()["detail"]
