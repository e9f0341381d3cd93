"""Application claims over HTTP, in an app of one's own: on ``Principal`` with no
lookup, through the session cookie and the bearer token alike (LIB-03, LIB-04)."""

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI

from velvetrope import Principal, Velvetrope
from velvetrope.stores.records import UserRecord
from velvetrope.testing import (
    PASSWORD,
    app_client,
    bearer_for,
    new_user,
    settings_for_tests,
    sign_in,
)


def app_with_claims(claims: dict[str, Any]) -> FastAPI:
    auth = Velvetrope(settings_for_tests())

    @auth.hooks.claims
    async def hook(user: UserRecord) -> dict[str, Any]:
        return {**claims, "user_email": user.email}

    app = FastAPI()
    auth.install(app)

    @app.get("/whoami")
    async def whoami(who: Annotated[Principal, Depends(auth.principal)]) -> dict[str, Any]:
        return {"email": who.email, "claims": dict(who.claims), "method": who.method}

    return app


async def test_claims_and_email_reach_your_routes_by_cookie_and_by_bearer() -> None:
    roles = {"roles": ["admin", "billing"], "tenant": {"id": 42, "plan": "pro"}}
    app = app_with_claims(roles)
    async with app_client(app) as client:
        ann = await new_user(client)
        by_bearer = (await client.get("/whoami", headers=await bearer_for(ann))).json()
        await sign_in(client, ann)
        by_cookie = (await client.get("/whoami")).json()
    expected = {**roles, "user_email": ann.email}
    assert by_cookie == {"email": ann.email, "claims": expected, "method": "session"}
    assert by_bearer == {"email": ann.email, "claims": expected, "method": "bearer"}


@pytest.mark.parametrize(
    ("claims", "logged"),
    [
        ({"exp": 9999999999}, "reserved name(s) exp"),
        ({"blob": "x" * 3000}, "over the 2048-byte cap"),
    ],
)
async def test_LIB_03_LIB_04_refused_claims_fail_the_sign_in_with_nothing_issued(
    claims: dict[str, Any], logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_with_claims(claims)
    async with app_client(app) as client:
        ann = await new_user(client)
        response = await client.post("/auth/login", json={"email": ann.email, "password": PASSWORD})
        token = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": ann.email, "password": PASSWORD},
        )
        devices = await ann.velvetrope.service.devices(ann.id)
    assert response.status_code == 500
    assert response.json() == {
        "error": "invalid_claims",
        "detail": "The application's claims could not be issued.",  # details stay in the log
    }
    assert "set-cookie" not in response.headers
    assert (token.status_code, token.json()["error"]) == (500, "invalid_claims")
    assert devices == []
    assert logged in caplog.text
