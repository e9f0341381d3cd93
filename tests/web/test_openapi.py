"""The OpenAPI document says exactly what the server answers (issue 14).

The end-to-end proof is schemathesis against a real server (tests/e2e/test_contract.py);
these pin the parts that come from tables, so a drift fails fast and says where.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from velvetrope import AuthService
from velvetrope import errors as tree
from velvetrope.web.errors import error_response
from velvetrope.web.openapi import HEADER_DOCS, answers, status_of

SAMPLES: list[tree.AuthError] = [
    tree.InvalidInput(),
    tree.InvalidEmail(),
    tree.WeakPassword(),
    tree.EmailTaken(),
    tree.InvalidCredentials(),
    tree.AccountDisabled(),
    tree.NotAuthenticated(),
    tree.SessionInvalid(),
    tree.SessionExpired(),
    tree.DeviceBindingRequired(),
    tree.InvalidToken(),
    tree.InvalidDPoPProof(),
    tree.UseDPoPNonce("n"),
    tree.OAuthError(),
    tree.InvalidGrant(),
    tree.RefreshTokenReused("f"),
    tree.UnsupportedGrantType(),
    tree.DPoPProofRefused(),
    tree.DPoPNonceRequired("n"),
    tree.InvalidDeviceProof(),
    tree.CsrfFailed(),
    tree.ReauthRequired(),
    tree.NotFound(),
    tree.UserNotFound(),
    tree.SessionNotFound(),
    tree.TooManyAttempts(timedelta(seconds=3)),
    tree.ConfigurationError(),
    tree.StoreUnavailable(),
]


@pytest.mark.parametrize("error", SAMPLES, ids=lambda e: type(e).__name__)
def test_API_02_declared_status_code_and_headers_are_what_the_table_sends(
    error: tree.AuthError,
) -> None:
    response = error_response(error)
    [(status, entry)] = answers(type(error)).items()
    assert status == response.status_code == status_of(type(error))
    schema = entry["content"]["application/json"]["schema"]
    assert schema["properties"]["error"]["enum"] == [error.code]
    sent = {name for name in HEADER_DOCS if name.lower() in response.headers}
    declared = entry.get("headers", {})
    assert sent == set(declared)
    assert all(header["required"] for header in declared.values())


def test_a_header_only_some_codes_of_a_status_send_is_optional() -> None:
    [(status, entry)] = answers(tree.OAuthError, tree.DPoPNonceRequired).items()
    assert status == 400
    assert entry["headers"]["DPoP-Nonce"]["required"] is False


async def _document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_API_02_every_operation_declares_the_answers_sent_before_any_route(
    client: httpx.AsyncClient,
) -> None:
    document = await _document(client)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"413", "431", "422"} <= set(responses), (method, path)
            if method in {"post", "delete"}:
                assert "csrf_failed" in str(responses["403"]), (method, path)
            for status, entry in responses.items():
                if status.startswith(("4", "5")):
                    schema = entry["content"]["application/json"]["schema"]
                    assert schema["required"] == ["error", "detail"], (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_API_03_security_schemes_give_docs_an_authorize_button(
    client: httpx.AsyncClient,
) -> None:
    document = await _document(client)
    schemes = document["components"]["securitySchemes"]
    assert schemes["session"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "__Host-velvetrope-session",
        "description": schemes["session"]["description"],
    }
    assert schemes["bearer"]["scheme"] == "bearer"
    assert schemes["dpop"]["scheme"] == "DPoP"
    assert schemes["oauth2"]["flows"]["password"]["tokenUrl"] == "/auth/token"
    me = document["paths"]["/auth/me"]["get"]
    assert {next(iter(s)) for s in me["security"]} == set(schemes)
    assert document["paths"]["/auth/reauth"]["post"]["security"] == [{"session": []}]
    assert {} in document["paths"]["/auth/logout"]["post"]["security"]
    assert "security" not in document["paths"]["/auth/register"]["post"]


async def test_API_04_request_schemas_say_what_the_server_enforces(
    client: httpx.AsyncClient,
) -> None:
    document = await _document(client)

    def schema(path: str, media: str = "application/json") -> dict[str, Any]:
        body = document["paths"][path]["post"]["requestBody"]["content"][media]["schema"]
        return body  # type: ignore[no-any-return]

    token = schema("/auth/token")["properties"]
    assert token["grant_type"]["enum"] == ["password", "refresh_token"]
    password = schema("/auth/register")["properties"]["password"]
    assert (password["minLength"], password["maxLength"]) == (15, 1024)
    assert schema("/auth/register")["properties"]["email"]["format"] == "email"
    form = schema("/auth/login", "application/x-www-form-urlencoded")
    assert form["additionalProperties"] == {"type": "string"}
    assert form["maxProperties"] == 16


async def test_API_05_revoke_answers_what_it_declares(client: httpx.AsyncClient) -> None:
    document = await _document(client)
    declared = document["paths"]["/auth/revoke"]["post"]["responses"]["200"]
    assert "content" not in declared
    response = await client.post("/auth/revoke", data={"token": "not-a-token"})
    assert response.status_code == 200
    assert response.content == b""
    assert "content-type" not in response.headers


async def test_API_02_declared_headers_are_sent(client: httpx.AsyncClient) -> None:
    document = await _document(client)
    login = document["paths"]["/auth/login"]["post"]["responses"]
    assert login["200"]["headers"]["Set-Cookie"]["required"] is True
    assert login["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert login["429"]["headers"]["Retry-After"]["required"] is True
    refused = await client.get("/auth/me")
    assert refused.status_code == 401
    assert "www-authenticate" in refused.headers


async def test_API_05_resend_answers_what_it_declares(
    service: AuthService, signed_in: httpx.AsyncClient, user_email: str
) -> None:
    """Signed in, the resend mails a link (202) or, once the address is verified, says so
    (200): both are declared, and so is the sign-in it needs."""
    document = await _document(signed_in)
    operation = document["paths"]["/auth/email/verify/resend"]["post"]
    assert {"200", "202", "401"} <= set(operation["responses"])
    assert operation["security"]
    user = await service.find_user(user_email)
    await service.stores.users.set_email_verified(user.id, service.now())
    answer = await signed_in.post("/auth/email/verify/resend")  # X-CSRF-Token: the fixture's
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "already_verified"
