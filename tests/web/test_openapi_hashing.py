"""``503 hashing_busy`` is declared wherever a password is hashed (``web/openapi.py``
adds it to every operation whose body carries a password), and what the server sends
when the hashing queue is full is what the document says."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import jsonschema
import pytest

from tests.support.services import PASSWORD
from velvetrope import PasswordHasher
from velvetrope.core.passwords import Verification
from velvetrope.errors import HashingBusy

HASHING = {
    "/auth/register",
    "/auth/login",
    "/auth/reauth",
    "/auth/password",
    "/auth/token",
    "/auth/password/reset",
}


class BusyHasher(PasswordHasher):
    """The test hasher, refusing every hash while ``busy`` (a full queue)."""

    busy = False

    def _refuse(self) -> None:
        if self.busy:
            raise HashingBusy(timedelta(seconds=1), "The server is busy checking passwords.")

    def refuse_if_busy(self) -> None:
        self._refuse()
        super().refuse_if_busy()

    async def hash(self, password: str) -> str:
        self._refuse()
        return await super().hash(password)

    async def verify(self, stored_hash: str | None, password: str) -> Verification:
        self._refuse()
        return await super().verify(stored_hash, password)


@pytest.fixture
def hasher() -> BusyHasher:
    return BusyHasher("test-only")


async def _document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_API_02_hashing_busy_is_declared_exactly_where_a_password_is_taken(
    client: httpx.AsyncClient,
) -> None:
    document = await _document(client)
    declaring = {
        path
        for path, operations in document["paths"].items()
        for operation in operations.values()
        if "hashing_busy"
        in operation["responses"]
        .get("503", {})
        .get("content", {})
        .get("application/json", {})
        .get("schema", {})
        .get("properties", {})
        .get("error", {})
        .get("enum", [])
    }
    assert declaring == HASHING


async def test_API_02_a_full_hashing_queue_answers_what_each_operation_declares(
    client: httpx.AsyncClient, hasher: BusyHasher, user_email: str
) -> None:
    document = await _document(client)
    signed_in = await client.post("/auth/login", json={"email": user_email, "password": PASSWORD})
    assert signed_in.status_code == 200
    hasher.busy = True
    calls = [
        ("/auth/register", {"email": "bob@example.com", "password": PASSWORD}),
        ("/auth/login", {"email": user_email, "password": PASSWORD}),
        ("/auth/token", {"grant_type": "password", "username": user_email, "password": PASSWORD}),
        ("/auth/reauth", {"password": PASSWORD}),
        ("/auth/password", {"current_password": PASSWORD, "new_password": PASSWORD + "!"}),
    ]
    for path, body in calls:
        if path == "/auth/token":
            response = await client.post(path, data=body)
        else:
            response = await client.post(path, json=body)
        assert response.status_code == 503, (path, response.text)
        assert response.json()["error"] == "hashing_busy"
        declared = document["paths"][path]["post"]["responses"]["503"]
        jsonschema.validate(response.json(), declared["content"]["application/json"]["schema"])
        assert {h for h, d in declared["headers"].items() if d["required"]} <= {
            h for h in declared["headers"] if h.lower() in response.headers
        }
