"""Fetch Metadata / Origin checks on unsafe requests (CSRF-05, CSRF-06, CSRF-07, CSRF-10)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ORIGIN, PASSWORD


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "https://testserver.evil.example"},
        {"Origin": "http://testserver"},  # scheme differs
        {"Origin": "https://testserver:8443"},  # port differs
    ],
)
async def test_CSRF_05_CSRF_06_cross_origin_unsafe_requests_are_refused(
    client: httpx.AsyncClient, user_email: str, headers: dict[str, str]
) -> None:
    response = await client.post(
        "/auth/login", json={"email": user_email, "password": PASSWORD}, headers=headers
    )
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed"
    assert "set-cookie" not in response.headers  # no login CSRF
    assert response.headers["vary"] == "Sec-Fetch-Site, Origin"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Sec-Fetch-Site": "same-origin", "Origin": ORIGIN}, {"Sec-Fetch-Site": "none"}],
)
async def test_CSRF_05_same_origin_and_non_browser_requests_pass(
    client: httpx.AsyncClient, user_email: str, headers: dict[str, str]
) -> None:
    response = await client.post(
        "/auth/login", json={"email": user_email, "password": PASSWORD}, headers=headers
    )
    assert response.status_code == 200
    assert "Origin" in response.headers["vary"]


async def test_CSRF_07_a_spoofed_host_does_not_make_an_origin_acceptable(
    client: httpx.AsyncClient, user_email: str
) -> None:
    response = await client.post(
        "/auth/login",
        json={"email": user_email, "password": PASSWORD},
        headers={
            "Host": "evil.example",
            "X-Forwarded-Host": "evil.example",
            "Origin": "https://evil.example",
        },
    )
    assert response.status_code == 403


async def test_CSRF_09_safe_methods_are_never_refused(signed_in: httpx.AsyncClient) -> None:
    response = await signed_in.get("/auth/me", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 200


async def test_cross_site_logout_all_changes_nothing(signed_in: httpx.AsyncClient) -> None:
    response = await signed_in.post(
        "/auth/logout-all", headers={"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}
    )
    assert response.status_code == 403
    assert (await signed_in.get("/auth/me")).status_code == 200
