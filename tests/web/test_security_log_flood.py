"""Anonymous requests cannot flood the persisted security log (LOG-07): junk DPoP proofs
on ``POST /auth/token``, from a client that never signed in, each answer 400 but are
written one row each only up to the node's budget; the rest are counted."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx

from velvetrope import AuthService, FrozenClock
from velvetrope.core.security_log import ANONYMOUS

FLOOD = 200


async def test_LOG_07_a_flood_of_junk_dpop_proofs_leaves_bounded_rows(
    client: httpx.AsyncClient, service: AuthService, clock: FrozenClock
) -> None:
    for _ in range(FLOOD):
        response = await client.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": "junk"},
            headers={"DPoP": "junk.junk.junk"},
        )
        assert response.status_code == 400, response.text
    await service.security_log.flush()
    rows = await service.stores.security_log.for_subjects([ANONYMOUS, ""], limit=10 * FLOOD)
    assert len(rows) == 30
    assert {row.event for row in rows} == {"dpop_proof_refused"}
    clock.advance(timedelta(minutes=1))
    await service.security_log.flush()
    rows = await service.stores.security_log.for_subjects([ANONYMOUS], limit=10 * FLOOD)
    [counted] = [json.loads(row.detail) for row in rows if "suppressed" in row.detail]
    assert counted == {"suppressed": FLOOD - 30, "window_seconds": 60}


async def test_LOG_07_a_flood_does_not_hide_a_wrong_password_for_a_real_account(
    client: httpx.AsyncClient, service: AuthService, user_email: str
) -> None:
    """Noise spends the anonymous budget first; the owner's failed sign-in (a wrong
    password for an existing account) is that user's event, kept in full."""
    for _ in range(FLOOD):
        await client.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": "junk"},
            headers={"DPoP": "junk.junk.junk"},
        )
    response = await client.post(
        "/auth/login", json={"email": user_email, "password": "a wrong password, surely"}
    )
    assert response.status_code == 401
    await service.security_log.flush()
    user = await service.find_user(user_email)
    listed = await service.security_events(user)
    assert [e.event for e in listed if e.event == "login_failed"] == ["login_failed"]
