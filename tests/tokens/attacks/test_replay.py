"""REPLAY: revocation and rotation at the HTTP edge (TERM-01..03, JWT-15, RT-02, RT-03)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.support.services import PASSWORD
from tests.support.stores import every_backend
from tests.tokens.conftest import Forger, assert_http_accepted, assert_rejected, bearer, reject_each
from velvetrope import FrozenClock
from velvetrope.errors import InvalidGrant

# --- REPLAY: revocation and rotation at the HTTP edge (TERM-01..03, JWT-15, RT-02, RT-03) -----


@every_backend
async def test_JWT_15_REPLAY_revoked_access_token_is_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    await assert_http_accepted(client, forger.genuine)
    revoked = await client.post("/auth/revoke", data={"token": forger.genuine})
    assert revoked.status_code == 200, revoked.text
    await assert_rejected(forger.service, client, forger.genuine, "revoked")


@every_backend
async def test_TERM_01_REPLAY_tokens_are_useless_after_bearer_logout(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    out = await client.post("/auth/logout", headers=bearer(forger.genuine))
    assert out.status_code == 204, out.text
    await assert_rejected(forger.service, client, forger.genuine, "revoked")
    refreshed = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": forger.refresh_token}
    )
    assert refreshed.status_code == 400, refreshed.text
    assert refreshed.json()["error"] == "invalid_grant"


@every_backend
async def test_TERM_03_REPLAY_password_change_ends_every_token(
    forger: Forger, client: httpx.AsyncClient, user_email: str
) -> None:
    other = await forger.service.token_login(user_email, PASSWORD)
    changed = await client.post(
        "/auth/password",
        headers=bearer(forger.genuine),
        json={"current_password": PASSWORD, "new_password": "a different long passphrase 42"},
    )
    assert changed.status_code < 300, changed.text
    await reject_each(
        forger.service,
        client,
        {"this": (forger.genuine, "revoked"), "other": (other.access_token, "revoked")},
    )
    for refresh in (forger.refresh_token, other.refresh_token):
        with pytest.raises(InvalidGrant):
            await forger.service.tokens.refresh_grant(refresh)


@every_backend
async def test_RT_02_RT_03_REPLAY_reused_refresh_token_revokes_the_family(
    forger: Forger, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """Rotate RT1 -> RT2, wait past the grace window, replay RT1: RT2 and every access token
    of the family (including the one issued with RT2) stop working."""
    first = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": forger.refresh_token}
    )
    assert first.status_code == 200, first.text
    rotated = first.json()
    await assert_http_accepted(client, rotated["access_token"])
    clock.advance(forger.service.tokens.policy.refresh_grace + timedelta(seconds=1))
    replay = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": forger.refresh_token}
    )
    assert replay.status_code == 400, replay.text
    assert replay.json()["error"] == "invalid_grant"
    again = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
    )
    assert again.status_code == 400, again.text
    await reject_each(
        forger.service,
        client,
        {"first": (forger.genuine, "revoked"), "rotated": (rotated["access_token"], "revoked")},
    )


async def test_REPLAY_unknown_refresh_token_is_invalid_grant_without_echo(
    client: httpx.AsyncClient,
) -> None:
    bogus = "R" * 43
    response = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": bogus}
    )
    assert response.status_code == 400, response.text
    assert bogus not in response.text
    assert response.json()["error"] == "invalid_grant"
