"""The cookie and header parsers on raw ASGI scopes: any header bytes give a value,
nothing, or the documented error.

ASGI servers hand header values over as bytes, unchecked; every parser here reads
them on every request, before anything else has looked at them.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.properties.strategies import PROPERTIES, latin1_bytes
from velvetrope.core.credentials import Presented
from velvetrope.errors import InvalidDPoPProof, InvalidToken
from velvetrope.web.csrf import OriginPolicy, header_token
from velvetrope.web.transports import BearerTransport, CookieTransport, DPoPTransport

ORIGIN = "https://auth.example.com"
COOKIE = CookieTransport()
NAMES = [b"cookie", b"authorization", b"dpop", b"x-csrf-token", b"origin", b"referer"]
NAMES += [b"sec-fetch-site", b"content-type", b"host"]

cookie_values = latin1_bytes | st.lists(
    st.tuples(
        st.sampled_from([b"__Host-velvetrope-session", b"other", b" __Host-velvetrope-session"]),
        latin1_bytes,
    ),
    max_size=4,
).map(lambda pairs: b"; ".join(n + b"=" + v for n, v in pairs))
auth_values = latin1_bytes | st.builds(
    lambda scheme, rest: scheme + rest,
    st.sampled_from([b"Bearer ", b"bearer ", b"DPoP ", b"dpop ", b"Bearer", b"Basic "]),
    latin1_bytes,
)
header_lists = st.lists(
    st.tuples(st.sampled_from(NAMES) | st.binary(max_size=20), cookie_values | auth_values),
    max_size=6,
)


def scope(headers: list[tuple[bytes, bytes]], **extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/auth/me",
        "raw_path": b"/auth/me",
        "headers": headers,
        **extra,
    }


@PROPERTIES
@given(header_lists)
def test_RES_02_the_cookie_parser_returns_text_or_nothing(headers: list[Any]) -> None:
    value = COOKIE.value_of(scope(headers))
    assert value is None or (isinstance(value, str) and value)
    presented = COOKIE.read_scope(scope(headers))
    assert presented is None or presented.value == value


@PROPERTIES
@given(header_lists)
def test_RES_02_the_bearer_parser_returns_a_token_nothing_or_invalid_token(
    headers: list[Any],
) -> None:
    try:
        presented = BearerTransport().read_scope(scope(headers))
    except InvalidToken:
        return
    assert presented is None or isinstance(presented, Presented)
    if presented is not None:
        assert presented.value
        assert " " not in presented.value


@PROPERTIES
@given(header_lists, st.sampled_from(["GET", "POST", "DELETE"]), latin1_bytes)
def test_RES_02_the_dpop_parser_returns_a_credential_nothing_or_its_errors(
    headers: list[Any], method: str, raw_path: bytes
) -> None:
    transport = DPoPTransport(ORIGIN, advertise=True)
    try:
        presented = transport.read_scope(scope(headers, method=method, raw_path=raw_path))
    except (InvalidToken, InvalidDPoPProof):
        return
    if presented is not None:
        assert presented.htm == method
        assert presented.htu is not None
        assert presented.htu.startswith(ORIGIN)


@PROPERTIES
@given(header_lists)
def test_RES_02_the_csrf_header_is_text_or_nothing(headers: list[Any]) -> None:
    value = header_token(scope(headers))
    assert value is None or isinstance(value, str)


@PROPERTIES
@given(header_lists, st.booleans())
def test_RES_02_the_origin_check_returns_a_verdict(headers: list[Any], cookie: bool) -> None:
    """Origin, Referer and Sec-Fetch-Site of any bytes: allowed (``None``) or a sentence."""
    policy = OriginPolicy(ORIGIN, trusted=["https://app.example.com"])
    verdict = policy.refusal(scope(headers), carries_cookie=cookie)
    assert verdict is None or (isinstance(verdict, str) and verdict)
