"""Where a bearer token may come from (JWT-18), malformed ``Authorization`` headers and
the uniform error (JWT-19), and fuzzing (JWT-20)."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.tokens.attacks.helpers import COOKIE
from tests.tokens.conftest import (
    INVALID_TOKEN_BODY,
    Forger,
    assert_http_accepted,
    assert_invalid_token_response,
    bearer,
)
from velvetrope.errors import InvalidToken

# --- where a bearer token may come from (JWT-18) and malformed headers ------------------------


async def test_JWT_18_access_token_in_the_query_string_is_ignored(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    response = await client.get("/auth/me", params={"access_token": forger.genuine})
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "not_authenticated"
    assert forger.genuine not in response.text


async def test_JWT_18_access_token_in_a_form_body_is_ignored(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """RFC 6750 §2.2 form-encoded bodies are not a way in: ``logout-all`` must 401 and
    must not have signed anyone out."""
    response = await client.post("/auth/logout-all", data={"access_token": forger.genuine})
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "not_authenticated"
    await assert_http_accepted(client, forger.genuine)


async def test_JWT_18_access_token_elsewhere_is_not_a_credential(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    placements = {
        "cookie access_token": {"Cookie": "access_token=TOKEN"},
        "session cookie": {"Cookie": f"{COOKIE}=TOKEN"},
        "X-Access-Token": {"X-Access-Token": "TOKEN"},
        "X-Authorization": {"X-Authorization": "Bearer TOKEN"},
        "Proxy-Authorization": {"Proxy-Authorization": "Bearer TOKEN"},
        "scheme Token": {"Authorization": "Token TOKEN"},
        "scheme JWT": {"Authorization": "JWT TOKEN"},
        "no scheme": {"Authorization": "TOKEN"},
    }
    failures = []
    for name, headers in placements.items():
        sent = {k: v.replace("TOKEN", forger.genuine) for k, v in headers.items()}
        response = await client.get("/auth/me", headers=sent)
        error = response.json().get("error")
        if response.status_code != 401 or error not in {"not_authenticated", "session_invalid"}:
            failures.append(f"{name}: {response.status_code} {response.text}")
        if forger.genuine in response.text:
            failures.append(f"{name}: token echoed")
    assert not failures, failures


MALFORMED_AUTHORIZATION = [
    "Bearer",
    "Bearer ",
    "Bearer  TOKEN",
    "bearer TOKEN TOKEN",
    "Bearer TOKEN TOKEN",
    "Bearer\tTOKEN",
    "Bearer TOKEN,",
    "Bearer TOKEN;",
    "Bearer=TOKEN",
    "BearerTOKEN",
    "Bearer:TOKEN",
    'Bearer "TOKEN"',
    "Bearer TOKEN, Bearer TOKEN",
    "Bearer {TOKEN}",
    "Bearer =TOKEN",
]


async def test_JWT_19_malformed_bearer_authorization_headers_are_invalid_token(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    failures = []
    for value in MALFORMED_AUTHORIZATION:
        header = value.replace("TOKEN", forger.genuine)
        response = await client.get("/auth/me", headers={"Authorization": header})
        try:
            assert_invalid_token_response(response, forger.genuine)
        except AssertionError as exc:
            failures.append(f"{value!r}: {exc}")
    assert not failures, "\n".join(failures)


async def test_bearer_scheme_name_is_case_insensitive(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """RFC 9110 §11.1: the auth scheme is case-insensitive (positive control)."""
    for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
        response = await client.get(
            "/auth/me", headers={"Authorization": f"{scheme} {forger.genuine}"}
        )
        assert response.status_code == 200, (scheme, response.text)


FUZZ = hypothesis_settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


B64URL_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
TOKENISH = st.text(alphabet=B64URL_CHARS + ".=+/~ ", max_size=200)
HEADER_VALUES = (
    st.binary(max_size=300)
    | TOKENISH.map(lambda t: f"Bearer {t}".encode())
    | st.text(max_size=120).map(lambda t: f"Bearer {t}".encode())
)


@FUZZ
@given(value=HEADER_VALUES)
async def test_JWT_20_random_authorization_headers_never_5xx(
    client: httpx.AsyncClient, value: bytes
) -> None:
    response = await client.get("/auth/me", headers=[(b"authorization", value)])
    assert response.status_code == 401, response.text
    assert response.json()["error"] in {"invalid_token", "not_authenticated"}


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


HEADER_KEYS = st.sampled_from(["alg", "kid", "typ", "crit", "jku", "jwk", "x5c", "b64", "enc"])


@FUZZ
@given(
    header=st.dictionaries(HEADER_KEYS, JSON_VALUES, max_size=5),
    claims=st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=5),
    signature=st.binary(max_size=100),
    keep_real_header=st.booleans(),
)
async def test_JWT_20_structured_garbage_tokens_are_401_never_5xx(  # noqa: PLR0917 - fixtures
    forger: Forger,
    client: httpx.AsyncClient,
    header: dict[str, Any],
    claims: dict[str, Any],
    signature: bytes,
    keep_real_header: bool,
) -> None:
    """Well-formed compact tokens with random JSON and no valid signature: always 401."""
    head = {**forger.header, **header} if keep_real_header else header
    token = forger.token(header=head, claims={**forger.claims, **claims}, signature=signature)
    response = await client.get("/auth/me", headers=bearer(token))
    assert_invalid_token_response(response)


# --- the uniform error body (JWT-19) ----------------------------------------------------------


def test_JWT_19_uniform_error_body_matches_the_error_class() -> None:
    assert {"error": InvalidToken.code, "detail": InvalidToken.default_detail} == INVALID_TOKEN_BODY
