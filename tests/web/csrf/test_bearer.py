"""Requests with ``Authorization: Bearer`` are exempt from CSRF, and only they."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from tests.web.csrf.helpers import CROSS_SITE, MODES, Browser, send

# --- Bearer requests are exempt ---------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_bearer_requests_need_no_token_even_cross_site(browser: Browser, bearer: str) -> None:
    auth = {"Authorization": f"Bearer {bearer}"}
    me = await browser.http.get("/auth/me", headers={**auth, **CROSS_SITE})
    assert me.status_code == 200
    family = me.json()["session"]["id"]
    before = await browser.state()
    response = await browser.http.post("/auth/logout", headers={**auth, **CROSS_SITE})
    assert response.status_code == 204
    assert "set-cookie" not in response.headers
    assert (await browser.http.get("/auth/me", headers=auth)).status_code == 401
    after = await browser.state()
    assert after.devices == tuple(d for d in before.devices if d != family)  # only the bearer's
    assert dataclasses.replace(after, devices=before.devices) == before


@pytest.mark.parametrize("mode", MODES)
async def test_get_csrf_with_a_bearer_token_says_none_is_needed(
    bare_client: httpx.AsyncClient, bearer: str
) -> None:
    response = await bare_client.get("/auth/csrf", headers={"Authorization": f"Bearer {bearer}"})
    assert response.status_code == 422
    assert "need no CSRF token" in response.json()["detail"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "authorization", ["Bearer not.a.token", "Bearer x", "Basic YW5uOnB3", "Bearer"]
)
async def test_a_bad_or_other_authorization_never_borrows_the_bearer_exemption(
    browser: Browser, authorization: str
) -> None:
    """The cookie is not used when a Bearer header is there, and any other scheme is no
    exemption: either way a cross-site request changes nothing."""
    before = await browser.state()
    for name in ("logout", "logout-all", "end-session"):
        response = await send(browser, name, {**CROSS_SITE, "Authorization": authorization})
        assert response.status_code in {401, 403}, response.text
        assert "set-cookie" not in response.headers
    assert await browser.state() == before
