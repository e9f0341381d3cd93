"""Claim rows: TIME (JWT-09, JWT-10), AUD and ISS (JWT-11, JWT-12), the identity claims
(JWT-14, JWT-15), TYP (JWT-13)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.support.services import ORIGIN
from tests.support.stores import every_backend
from tests.tokens.attacks.helpers import forger_on, raw_json
from tests.tokens.conftest import (
    Case,
    Forger,
    ServiceFactory,
    accept_each,
    assert_http_accepted,
    assert_invalid_token_response,
    assert_rejected,
    bearer,
    http_client,
    reject_each,
    without,
)
from velvetrope import FrozenClock
from velvetrope.errors import InvalidGrant

# --- TIME (JWT-09, JWT-10) --------------------------------------------------------------------


BAD_NUMERIC_DATES: dict[str, str] = {
    "string": '"9999999999"',
    "string-float": '"1e10"',
    "true": "true",
    "false": "false",
    "null": "null",
    "list": "[9999999999]",
    "object": '{"$date":9999999999}',
    "empty-string": '""',
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "1e400": "1e400",
    "-1e400": "-1e400",
    "-1": "-1",
    "2^40": str(2**40),
    "2^63": str(2**63),
    "2^64": str(2**64),
    "1e308": "1e308",
}


async def test_JWT_09_TIME_numeric_dates_must_be_finite_json_numbers(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """``"exp":"9999999999"`` (PyJWT accepts it), booleans, NaN, 1e400: refused in exp,
    nbf and iat; and a missing exp, nbf or iat is refused too."""
    cases: dict[str, Case] = {}
    for claim in ("exp", "nbf", "iat"):
        for label, raw in BAD_NUMERIC_DATES.items():
            claims = raw_json(without(forger.claims, claim), last=f'"{claim}":{raw}')
            cases[f"{claim}={label}"] = (forger.token(claims=claims), None)
        cases[f"{claim}-missing"] = (
            forger.token(claims=without(forger.claims, claim)),
            f"{claim} is not a number",
        )
    await reject_each(forger.service, client, cases)


async def test_JWT_09_JWT_20_huge_integer_numeric_date_is_401_not_500(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """A 401-digit JSON integer is a valid Python int that ``math.isfinite`` cannot take
    (OverflowError in ``claims._numeric_date``): it must be ``InvalidToken``/401, never an
    unhandled exception/500."""
    cases: dict[str, Case] = {}
    for claim in ("exp", "nbf", "iat"):
        for digits in (310, 400, 4000):
            claims = raw_json(without(forger.claims, claim), last=f'"{claim}":1{"0" * digits}')
            cases[f"{claim}=10^{digits}"] = (forger.token(claims=claims), None)
    await reject_each(forger.service, client, cases)


async def test_JWT_10_TIME_boundaries_with_the_default_30s_leeway(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """Offsets are seconds from the frozen ``now``; the leeway applies to exp, nbf, iat."""
    now = forger.now

    def token(**offsets: float) -> str:
        changes = {k: now + v for k, v in offsets.items()}
        return forger.token(claims=forger.with_claims(**changes, jti="T" * 22))

    await reject_each(
        forger.service,
        client,
        {
            "exp=now-30 (now >= exp + leeway)": (token(exp=-30), "expired"),
            "exp=now-31": (token(exp=-31), "expired"),
            "exp=now-1h": (token(exp=-3600, iat=-4000, nbf=-4000), "expired"),
            "nbf=now+31": (token(nbf=31), "not yet valid"),
            "iat=now+31": (token(iat=31), "issued in the future"),
            "iat=now+1y": (token(iat=86400 * 365, nbf=0), "issued in the future"),
        },
    )
    await accept_each(
        forger.service,
        client,
        {
            "exp=now-29": token(exp=-29),
            "exp=now": token(exp=0),
            "exp=now+0.5 (float)": token(exp=0.5),
            "nbf=now+30": token(nbf=30),
            "iat=now+30": token(iat=30),
        },
    )


async def test_JWT_10_TIME_boundaries_with_zero_leeway(make_service: ServiceFactory) -> None:
    """With no leeway: ``exp = now`` is expired, ``nbf``/``iat`` one second ahead refused."""
    service = await make_service(leeway=timedelta(0))
    forger = await forger_on(service)
    now = forger.now

    def token(**offsets: int) -> str:
        return forger.token(claims=forger.with_claims(**{k: now + v for k, v in offsets.items()}))

    async with http_client(service) as client:
        await reject_each(
            service,
            client,
            {
                "exp=now": (token(exp=0), "expired"),
                "nbf=now+1": (token(nbf=1), "not yet valid"),
                "iat=now+1": (token(iat=1), "issued in the future"),
            },
        )
        await accept_each(
            service, client, {"exp=now+1": token(exp=1), "nbf=now": token(nbf=0, iat=0)}
        )


async def test_JWT_09_TIME_cached_token_expires_on_time(
    forger: Forger, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """The verified-token cache does not outlive ``exp`` + leeway."""
    await assert_http_accepted(client, forger.genuine)
    clock.advance(timedelta(seconds=forger.claims["exp"] - forger.now + 29))
    await assert_http_accepted(client, forger.genuine)
    clock.advance(timedelta(seconds=1))
    await assert_rejected(forger.service, client, forger.genuine, "expired")


# --- AUD and ISS (JWT-11, JWT-12) -------------------------------------------------------------


BAD_AUDIENCES: list[object] = [
    "https://testserve",
    "https://testserver.evil",
    "HTTPS://TESTSERVER",
    "https://TestServer",
    "https://testserver/",
    "https://testserver:443",
    " https://testserver",
    "https://testserver ",
    "https://testserver\u0000",
    "https://evil.example/https://testserver",
    "testserver",
    "",
    ["https://testserve"],
    ["HTTPS://TESTSERVER"],
    list("https://testserver"),
    [1],
    ["https://testserver", 1],
    ["https://testserver", None],
    [["https://testserver"]],
    [],
    None,
    1,
    True,
    {"https://testserver": True},
]


async def test_JWT_11_AUD_wrong_audience_is_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """Exact, case-sensitive, whole string; lists only of strings; no substring matches."""
    cases: dict[str, Case] = {
        repr(aud)[:60]: (forger.token(claims=forger.with_claims(aud=aud)), "wrong aud")
        for aud in BAD_AUDIENCES
    }
    cases["missing"] = (forger.token(claims=without(forger.claims, "aud")), "wrong aud")
    await reject_each(forger.service, client, cases)


async def test_JWT_11_AUD_list_containing_our_audience_is_accepted(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """RFC 7519 §4.1.3: an array of strings that contains ours."""
    lists = {
        "[ours]": [ORIGIN],
        "[other, ours]": ["https://other.example", ORIGIN],
        "[ours, ours]": [ORIGIN, ORIGIN],
    }
    tokens = {name: forger.token(claims=forger.with_claims(aud=aud)) for name, aud in lists.items()}
    await accept_each(forger.service, client, tokens)


BAD_ISSUERS: list[object] = [
    "https://testserve",
    "https://testserver.evil",
    "HTTPS://TESTSERVER",
    "https://testserver/",
    "https://testserver:443",
    "http://testserver",
    " https://testserver",
    "https://testserver\u0000",
    "https://evil.example/https://testserver",
    "urn:velvetrope",
    "",
    [ORIGIN],
    None,
    1,
    {"iss": ORIGIN},
]


async def test_JWT_12_ISS_wrong_issuer_is_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """Exact comparison only: no prefix, substring, case folding or list (CVE-2024-53861)."""
    cases: dict[str, Case] = {
        repr(iss)[:60]: (forger.token(claims=forger.with_claims(iss=iss)), None)
        for iss in BAD_ISSUERS
    }
    cases["missing"] = (forger.token(claims=without(forger.claims, "iss")), "iss is not a string")
    await reject_each(forger.service, client, cases)


# --- sub, sid, jti, client_id (JWT-14, JWT-15) ------------------------------------------------


async def test_JWT_14_JWT_15_identity_claims_must_be_non_empty_strings(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    cases: dict[str, Case] = {}
    for name in ("sub", "sid", "jti", "client_id"):
        for value in (None, 1, "", ["x"], {"id": "x"}, True, "x" * 257):
            token = forger.token(claims=forger.with_claims(**{name: value}))
            cases[f"{name}={value!r:.20}"] = (token, None)
        cases[f"{name}-missing"] = (forger.token(claims=without(forger.claims, name)), None)
    for jti in ("short", "A" * 21, "A" * 129, "has space AAAAAAAAAAAAAAAAA", "A+" * 11):
        cases[f"jti={jti[:20]}"] = (forger.token(claims=forger.with_claims(jti=jti)), "bad jti")
    await reject_each(forger.service, client, cases)


@every_backend
async def test_JWT_14_TERM_04_token_of_a_disabled_user_is_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """Disabling the account ends its tokens on the very next request, on every route."""
    await assert_http_accepted(client, forger.genuine)
    await forger.service.disable_user(forger.claims["sub"])
    await assert_rejected(forger.service, client, forger.genuine, "revoked")
    sessions = await client.get("/auth/sessions", headers=bearer(forger.genuine))
    assert_invalid_token_response(sessions, forger.genuine)


# --- TYP (JWT-13) -----------------------------------------------------------------------------


BAD_TYPS: list[object] = [
    "JWT",
    "jwt",
    "rt+jwt",
    "id+jwt",
    "at+jwt ",
    " at+jwt",
    "at+jwt\u0000",
    "at-jwt",
    "atjwt",
    "JOSE",
    "",
    None,
    1,
    ["at+jwt"],
    # RFC 9068 §4 would also allow the full media type; velvetrope only ever issues
    # "at+jwt" and accepts exactly that, case-insensitively (documented, stricter).
    "application/at+jwt",
]


async def test_JWT_13_TYP_other_token_types_are_rejected(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    cases: dict[str, Case] = {
        repr(typ): (forger.token(header=forger.with_header(typ=typ)), "wrong typ")
        for typ in BAD_TYPS
    }
    cases["missing"] = (forger.token(header=without(forger.header, "typ")), "wrong typ")
    await reject_each(forger.service, client, cases)


async def test_JWT_13_TYP_is_compared_case_insensitively(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    """RFC 7515 §4.1.9: ``typ`` values are compared case-insensitively; the codec lowercases
    both sides, so these (signed with the real key) are accepted. Documented behaviour."""
    tokens = {
        typ: forger.token(header=forger.with_header(typ=typ))
        for typ in ("at+JWT", "AT+JWT", "At+Jwt")
    }
    await accept_each(forger.service, client, tokens)


async def test_JWT_13_refresh_token_is_not_a_bearer_token(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    await assert_rejected(forger.service, client, forger.refresh_token, "not a compact JWS")


@every_backend
async def test_JWT_13_access_token_is_not_a_refresh_token(
    forger: Forger, client: httpx.AsyncClient
) -> None:
    with pytest.raises(InvalidGrant):
        await forger.service.tokens.refresh_grant(forger.genuine)
    response = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": forger.genuine}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"
    await assert_http_accepted(client, forger.genuine)  # and it did not revoke anything
