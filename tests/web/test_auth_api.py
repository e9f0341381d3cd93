"""The HTTP contract of /auth/*: paths, status codes and body shapes clients code against."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tests.support.services import PASSWORD
from velvetrope import FrozenClock

COOKIE = "__Host-velvetrope-session"


async def test_register_returns_201_with_id_and_normalised_email(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register", json={"email": " Ann@Example.COM ", "password": PASSWORD}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email"}
    assert body["email"] == "ann@example.com"


async def test_register_twice_is_409_email_taken(
    client: httpx.AsyncClient, user_email: str
) -> None:
    response = await client.post(
        "/auth/register", json={"email": user_email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 409
    assert response.json()["error"] == "email_taken"


async def test_register_accepts_a_form_body(client: httpx.AsyncClient) -> None:
    await client.get("/auth/csrf")  # the sign-up page's pre-session token (login CSRF)
    response = await client.post(
        "/auth/register", data={"email": "bob@example.com", "password": PASSWORD}
    )
    assert response.status_code == 201


async def test_login_sets_cookie_and_returns_user(
    client: httpx.AsyncClient, user_email: str
) -> None:
    response = await client.post("/auth/login", json={"email": user_email, "password": PASSWORD})
    assert response.status_code == 200
    assert response.json()["user"]["email"] == user_email
    assert COOKIE in response.cookies
    assert response.headers["cache-control"] == "no-store"


async def test_login_with_form_body(client: httpx.AsyncClient, user_email: str) -> None:
    await client.get("/auth/csrf")  # the sign-in page's pre-session token (login CSRF)
    response = await client.post("/auth/login", data={"email": user_email, "password": PASSWORD})
    assert response.status_code == 200


async def test_me_describes_user_and_session(signed_in: httpx.AsyncClient, user_email: str) -> None:
    response = await signed_in.get("/auth/me")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "email", "email_verified", "session"}
    assert body["email_verified"] is False
    assert body["email"] == user_email
    assert set(body["session"]) == {"id", "created_at", "expires_at"}
    assert body["session"]["created_at"] == "2026-01-01T00:00:00Z"
    assert body["session"]["expires_at"] == "2026-01-01T00:30:00Z"  # idle deadline comes first


async def test_me_without_session_is_401_with_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth/me")
    assert response.status_code == 401
    assert response.json() == {"error": "not_authenticated", "detail": "You are not signed in."}
    assert "WWW-Authenticate" in response.headers


async def test_sessions_lists_devices_with_handles_not_secrets(
    signed_in: httpx.AsyncClient,
) -> None:
    secret = signed_in.cookies[COOKIE]
    response = await signed_in.get("/auth/sessions", headers={"User-Agent": "pytest-agent"})
    assert response.status_code == 200
    [device] = response.json()
    assert set(device) == {
        "id",
        "created_at",
        "last_seen_at",
        "ip",
        "user_agent",
        "current",
        "bound",
    }
    assert device["current"] is True
    assert device["ip"] == "203.0.113.7"
    assert secret not in response.text


async def test_delete_own_session_signs_out(signed_in: httpx.AsyncClient) -> None:
    [device] = (await signed_in.get("/auth/sessions")).json()
    response = await signed_in.delete(f"/auth/sessions/{device['id']}")
    assert response.status_code == 204
    assert (await signed_in.get("/auth/me")).status_code == 401


async def test_delete_unknown_session_is_404(signed_in: httpx.AsyncClient) -> None:
    response = await signed_in.delete("/auth/sessions/0123456789abcdef01234567")
    assert response.status_code == 404
    assert response.json()["error"] == "session_not_found"


async def test_logout_is_204_and_clears_cookie(signed_in: httpx.AsyncClient) -> None:
    response = await signed_in.post("/auth/logout")
    assert response.status_code == 204
    assert response.headers["clear-site-data"] == '"cookies", "storage"'
    assert "Max-Age=0" in response.headers["set-cookie"]


async def test_logout_all_ends_every_session(
    client: httpx.AsyncClient, signed_in: httpx.AsyncClient, user_email: str, vr: object
) -> None:
    other = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    async with other:
        await other.post("/auth/login", json={"email": user_email, "password": PASSWORD})
        assert (await other.get("/auth/me")).status_code == 200
        response = await signed_in.post("/auth/logout-all")
        assert response.status_code == 204
        assert (await other.get("/auth/me")).status_code == 401


async def test_revoking_another_device_needs_recent_sign_in(
    client: httpx.AsyncClient, signed_in: httpx.AsyncClient, user_email: str, clock: FrozenClock
) -> None:
    """SESS-12 / TIME-05: ending other devices needs a fresh password proof."""
    other = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    async with other:
        await other.post("/auth/login", json={"email": user_email, "password": PASSWORD})
        devices = (await signed_in.get("/auth/sessions")).json()
        [theirs] = [d for d in devices if not d["current"]]
        clock.advance(timedelta(minutes=11))
        await other.get("/auth/me")  # keep both sessions alive
        refused = await signed_in.delete(f"/auth/sessions/{theirs['id']}")
        assert refused.status_code == 403
        assert refused.json()["error"] == "reauth_required"
        reauth = await signed_in.post("/auth/reauth", json={"password": PASSWORD})
        assert reauth.status_code == 200
        allowed = await signed_in.delete(f"/auth/sessions/{theirs['id']}")
        assert allowed.status_code == 204
        assert (await other.get("/auth/me")).status_code == 401
