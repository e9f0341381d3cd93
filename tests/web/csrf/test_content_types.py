"""CSRF-08: bodies a cross-site form can send are refused."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.services import PASSWORD
from tests.web.csrf.helpers import (
    MODES,
    SAME_ORIGIN,
    Browser,
    assert_csrf_refusal,
    password_unchanged,
)
from velvetrope import AuthService

# --- CSRF-08: simple content types ------------------------------------------------------------


SIMPLE_BODIES: dict[str, tuple[str | None, dict[str, Any]]] = {
    "text/plain": ("text/plain", {"content": f'{{"password": "{PASSWORD}"}}'.encode()}),
    "text/plain form-shaped": (
        "text/plain;charset=UTF-8",
        {"content": b"password=correct+horse+battery+staple"},
    ),
    "multipart": (None, {"files": {"password": (None, PASSWORD)}}),
    "form-encoded": (None, {"data": {"password": PASSWORD}}),
}


def simple_body(kind: str, headers: dict[str, str]) -> dict[str, Any]:
    """httpx keyword arguments for a ``kind`` body sent with ``headers``."""
    content_type, body = SIMPLE_BODIES[kind]
    if content_type is not None:
        headers = {**headers, "Content-Type": content_type}
    return {**body, "headers": headers}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", ["/auth/reauth", "/auth/password", "/auth/logout-all"])
@pytest.mark.parametrize("kind", SIMPLE_BODIES)
async def test_CSRF_08_bodies_a_cross_site_form_can_send_are_refused(
    browser: Browser, service: AuthService, path: str, kind: str
) -> None:
    """What an attacker's <form> (or a no-cors fetch) can send: cookie yes, header no."""
    before = await browser.state()
    response = await browser.http.post(path, **simple_body(kind, SAME_ORIGIN))
    assert_csrf_refusal(response)
    assert await browser.state() == before
    assert await password_unchanged(service, browser.email)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", ["/auth/reauth", "/auth/password"])
@pytest.mark.parametrize("kind", ["text/plain", "text/plain form-shaped", "multipart"])
async def test_CSRF_08_json_endpoints_refuse_simple_types_even_with_the_token(
    browser: Browser, service: AuthService, path: str, kind: str
) -> None:
    before = await browser.state()
    response = await browser.http.post(path, **simple_body(kind, browser.headers()))
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert "set-cookie" not in response.headers
    assert await browser.state() == before
    assert await password_unchanged(service, browser.email)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["text/plain", "multipart"])
async def test_CSRF_08_sign_in_refuses_simple_types(
    bare_client: httpx.AsyncClient, user_email: str, kind: str
) -> None:
    """A cross-site text/plain or multipart form must not sign anyone in (login CSRF)."""
    credentials = {"email": user_email, "password": PASSWORD}
    if kind == "text/plain":
        body: dict[str, Any] = {
            "content": f'{{"email": "{user_email}", "password": "{PASSWORD}"}}'.encode(),
            "headers": {"Content-Type": "text/plain"},
        }
    else:
        body = {"files": {k: (None, v) for k, v in credentials.items()}}
    response = await bare_client.post("/auth/login", **body)
    assert response.status_code == 415
    assert not bare_client.cookies.jar
