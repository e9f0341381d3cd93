"""The account page lists the user's recent sign-ins from the security log (issue 14)."""

from __future__ import annotations

import html

import httpx

from tests.support.services import PASSWORD

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"


async def test_LOG_06_recent_sign_ins_show_time_ip_and_device(
    client: httpx.AsyncClient, user_email: str
) -> None:
    token = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": user_email, "password": PASSWORD},
        headers={"User-Agent": "curl/8.14.1"},
    )
    assert token.status_code == 200
    login = await client.post(
        "/auth/login",
        json={"email": user_email, "password": PASSWORD},
        headers={"User-Agent": FIREFOX},
    )
    assert login.status_code == 200
    page = await client.get("/account")
    assert page.status_code == 200
    text = html.unescape(page.text)
    section = text[text.index("Recent sign-ins") :]
    assert "Firefox 140 on Linux" in section
    assert "curl 8" in section
    assert section.count("· IP ") == 2
    assert "<time datetime=" in section


async def test_a_new_account_has_its_first_sign_in_listed(
    signed_in: httpx.AsyncClient,
) -> None:
    page = await signed_in.get("/account")
    text = html.unescape(page.text)
    section = text[text.index("Recent sign-ins") :]
    assert "No sign-ins recorded yet" not in section
    assert section.count("· IP ") == 1
