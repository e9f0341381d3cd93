import pytest

from app import app
from velvetrope.testing import app_client, bearer_for, new_user, sign_in

pytestmark = pytest.mark.anyio  # async tests (anyio comes with FastAPI)


async def test_orders_need_a_sign_in() -> None:
    async with app_client(app) as client:  # https://testserver: Secure cookies come back
        response = await client.get("/orders")
        assert response.status_code == 401
        assert response.json()["error"] == "not_authenticated"


async def test_a_signed_in_user_sees_and_places_orders() -> None:
    async with app_client(app) as client:
        ann = await new_user(client)
        await sign_in(client, ann)  # the session cookie, and X-CSRF-Token from now on
        assert (await client.get("/orders")).json()["email"] == ann.email
        assert (await client.post("/orders")).status_code == 201


async def test_api_clients_send_a_bearer_token() -> None:
    async with app_client(app) as client:
        ann = await new_user(client)
        response = await client.get("/orders", headers=await bearer_for(ann))
        assert response.json()["user"] == ann.id
