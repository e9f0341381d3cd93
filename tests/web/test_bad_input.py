"""Hostile input at the HTTP edge: OPS-03 size limits, SESS-05/SESS-08 cookie values, bodies.

Whatever arrives, the answer is a 4xx in the house shape ``{"error": code, "detail":
sentence}``, never a 500, and no session row appears that the server did not issue.
Hostile session IDs (SESS-05, SESS-08) reach a store lookup, so those tests run on every
backend; the rest are refused at the edge and run on the memory store.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.support.postgres import postgres_rows
from tests.support.redis import RedisTestStores, count_sessions
from tests.support.services import PASSWORD
from tests.support.stores import every_backend
from velvetrope import AuthService, MemoryStores, SQLiteStores
from velvetrope.stores import PostgresStores, Stores

COOKIE = "__Host-velvetrope-session"
MAX_BODY = 64 * 1024
MAX_COOKIE = 8 * 1024
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
CODE_RE = re.compile(r"[a-z]+(_[a-z]+)*")

FUZZ = hypothesis_settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """``response`` is ``status`` with the house error shape (and ``code``, if given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert isinstance(body, dict)
    assert {"error", "detail"} <= set(body), body
    # RFC 6749 section 5.2 clients read error_description; it may mirror detail, nothing else
    assert set(body) - {"error", "detail"} <= {"error_description"}, body
    assert body.get("error_description", body["detail"]) == body["detail"], body
    assert isinstance(body["error"], str)
    assert CODE_RE.fullmatch(body["error"]), body
    assert isinstance(body["detail"], str)
    assert body["detail"][:1].isupper() or ":" in body["detail"], body
    assert body["detail"].endswith("."), body
    if code is not None:
        assert body["error"] == code, body
    return body


Rows = Callable[[], int]


@pytest.fixture
def session_rows(stores: Stores, tmp_path: Path) -> Rows:
    """Count every session row the backend holds, whoever it belongs to.

    SQLite is read through a second, read-only connection to the fixture's file, so
    the count does not depend on the store's internals.
    """

    def count() -> int:
        if isinstance(stores, MemoryStores):
            return len(stores.sessions._by_digest)
        if isinstance(stores, RedisTestStores):
            return count_sessions(stores.redis.prefix)
        if isinstance(stores, PostgresStores):
            return postgres_rows(stores, "sessions")
        assert isinstance(stores, SQLiteStores)
        uri = (tmp_path / "velvetrope.db").as_uri() + "?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            (rows,) = db.execute("SELECT count(*) FROM sessions").fetchone()
        return int(rows)

    return count


def padded(document: dict[str, str], size: int) -> bytes:
    """``document`` as JSON, padded with trailing whitespace to exactly ``size`` bytes."""
    raw = json.dumps(document).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


UNKNOWN = {"email": "nobody@example.com", "password": PASSWORD}


# --- OPS-03: body size ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/auth/login", "/auth/register"])
async def test_OPS_03_body_at_the_limit_is_read_one_byte_more_is_413(
    client: httpx.AsyncClient, path: str
) -> None:
    at_limit = await client.post(
        path, content=padded(UNKNOWN, MAX_BODY), headers={"Content-Type": JSON}
    )
    assert at_limit.status_code in {201, 401}, at_limit.text
    over = await client.post(
        path, content=padded(UNKNOWN, MAX_BODY + 1), headers={"Content-Type": JSON}
    )
    assert_error(over, 413, "payload_too_large")


@pytest.mark.parametrize("content_type", [JSON, FORM, "text/plain", None])
async def test_OPS_03_declared_oversize_body_is_413_whatever_the_type(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/auth/login", content=b"a" * (MAX_BODY * 4), headers=headers)
    assert_error(response, 413, "payload_too_large")


async def _chunks(total: int, size: int = 1000) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b" " * min(size, total - sent)
        sent += len(chunk)
        yield chunk


@pytest.mark.parametrize("path", ["/auth/login", "/auth/register"])
async def test_OPS_03_streamed_body_without_content_length_is_413(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.post(
        path, content=_chunks(MAX_BODY + 1), headers={"Content-Type": JSON}
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_error(response, 413, "payload_too_large")


async def test_OPS_03_streamed_body_under_the_limit_is_read(
    client: httpx.AsyncClient, user_email: str
) -> None:
    body = json.dumps({"email": user_email, "password": PASSWORD}).encode()

    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 7):
            yield body[i : i + 7]

    response = await client.post("/auth/login", content=stream(), headers={"Content-Type": JSON})
    assert "content-length" not in response.request.headers
    assert response.status_code == 200, response.text


async def test_OPS_03_understated_content_length_is_still_capped(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/auth/login",
        content=b" " * (MAX_BODY * 2),
        headers={"Content-Type": JSON, "Content-Length": "10"},
    )
    assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize("value", ["abc", "-1", "1e3", "0x10", "99999999999999999999999"])
async def test_OPS_03_malformed_content_length_is_4xx(
    client: httpx.AsyncClient, value: str
) -> None:
    response = await client.post(
        "/auth/login", content=b"{}", headers={"Content-Type": JSON, "Content-Length": value}
    )
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)


async def test_OPS_03_100k_open_brackets_are_refused_by_size(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/login", content=b"[" * 100_000, headers={"Content-Type": JSON}
    )
    assert_error(response, 413, "payload_too_large")


# --- OPS-03 / SESS-08: cookie size ------------------------------------------------------


def cookie_of(size: int) -> bytes:
    """A ``Cookie`` header value of exactly ``size`` bytes naming the session cookie."""
    prefix = f"{COOKIE}=".encode()
    return prefix + b"A" * (size - len(prefix))


async def test_OPS_03_cookie_header_at_the_limit_is_401_one_byte_more_is_431(
    client: httpx.AsyncClient, session_rows: Rows
) -> None:
    at_limit = await client.get("/auth/me", headers=[(b"cookie", cookie_of(MAX_COOKIE))])
    assert_error(at_limit, 401, "session_invalid")
    over = await client.get("/auth/me", headers=[(b"cookie", cookie_of(MAX_COOKIE + 1))])
    assert_error(over, 431, "header_too_large")
    assert session_rows() == 0


@pytest.mark.parametrize("size", [64 * 1024, 1024 * 1024])
async def test_OPS_03_huge_cookie_is_431(
    client: httpx.AsyncClient, session_rows: Rows, size: int
) -> None:
    for method, path in [("GET", "/auth/me"), ("POST", "/auth/logout"), ("POST", "/auth/login")]:
        response = await client.request(method, path, headers=[(b"cookie", cookie_of(size))])
        assert_error(response, 431, "header_too_large")
    assert session_rows() == 0


async def test_OPS_03_cookie_limit_counts_every_cookie_header(client: httpx.AsyncClient) -> None:
    half = b"a=" + b"x" * (MAX_COOKIE // 2)
    response = await client.get("/auth/me", headers=[(b"cookie", half), (b"cookie", half)])
    assert_error(response, 431, "header_too_large")


# --- SESS-05 / SESS-08: hostile session IDs ----------------------------------------------

HOSTILE_IDS: dict[str, bytes] = {
    "empty": b"",
    "short": b"abc",
    "42-chars": b"A" * 42,
    "44-chars": b"A" * 44,
    "sql-or": b"' OR 1=1--",
    "sql-or-43-chars": b"' OR '1'='1' --" + b"A" * 28,
    "sql-union": b"x' UNION SELECT id_digest FROM sessions--",
    "sql-drop": b"'; DROP TABLE sessions; --",
    "nul-43-chars": b"A" * 21 + b"\x00" + b"A" * 21,
    "nul-only": b"\x00" * 43,
    "unicode-43-chars": ("é" * 43).encode(),
    "emoji": ("\U0001f511" * 11).encode(),
    "latin1-bytes": bytes(range(0x80, 0x80 + 43)),
    "percent-encoded": b"%41" * 14 + b"A",
    "standard-base64-43-chars": b"+/" * 21 + b"A",
    "padded-base64": b"A" * 43 + b"=",
    "quoted-41": b'"' + b"A" * 41 + b'"',
    "json": b'{"user_id":"00000000-0000-4000-8000-000000000000"}',
    "path-traversal": b"../../../../etc/passwd",
    "crlf": b"A" * 20 + b"\r\nX-Injected: 1",
    "4-kib": b"A" * 4096,
    "just-under-the-limit": b"A" * (MAX_COOKIE - len(COOKIE) - 1),
}


async def _probe_all(client: httpx.AsyncClient, header: bytes) -> None:
    """Present ``header`` as the Cookie header everywhere a session is read."""
    cookie = [(b"cookie", header)]
    me = await client.get("/auth/me", headers=cookie)
    body = assert_error(me, 401)
    assert body["error"] in {"session_invalid", "not_authenticated"}
    assert re.fullmatch(r'(Session|Bearer) realm="velvetrope"', me.headers["www-authenticate"])
    sessions = await client.get("/auth/sessions", headers=cookie)
    assert_error(sessions, 401)
    logout_all = await client.post("/auth/logout-all", headers=cookie)
    assert_error(logout_all, 401)
    reauth = await client.post("/auth/reauth", json={"password": PASSWORD}, headers=cookie)
    assert_error(reauth, 401)
    logout = await client.post("/auth/logout", headers=cookie)
    assert logout.status_code == 204


@every_backend
@pytest.mark.parametrize("value", HOSTILE_IDS.values(), ids=HOSTILE_IDS.keys())
async def test_SESS_08_hostile_session_id_is_401_and_creates_nothing(
    client: httpx.AsyncClient, session_rows: Rows, value: bytes
) -> None:
    await _probe_all(client, f"{COOKIE}=".encode() + value)
    assert session_rows() == 0


@every_backend
async def test_SESS_05_random_well_formed_ids_are_never_adopted(
    client: httpx.AsyncClient, session_rows: Rows, user_email: str, service: AuthService
) -> None:
    for _ in range(25):
        planted = secrets.token_urlsafe(32)
        assert len(planted) == 43
        await _probe_all(client, f"{COOKIE}={planted}".encode())
    assert session_rows() == 0

    # A real sign-in is then the only thing that creates a row.
    login = await client.post("/auth/login", json={"email": user_email, "password": PASSWORD})
    assert login.status_code == 200
    assert session_rows() == 1


def _percent_encode_first(secret: str) -> str:
    return f"%{ord(secret[0]):02X}{secret[1:]}"


LIVE_VARIANTS: dict[str, Callable[[str], str]] = {
    "percent-encoded-first-char": _percent_encode_first,
    "swapped-case": str.swapcase,
    "one-char-longer": lambda s: s + "A",
    "one-char-shorter": lambda s: s[:-1],
    "reversed": lambda s: s[::-1],
    "with-nul-suffix": lambda s: s + "\x00",
    "doubled": lambda s: s + s,
}


@every_backend
@pytest.mark.parametrize("variant", LIVE_VARIANTS)
async def test_SESS_08_near_misses_of_a_live_id_are_401(
    signed_in: httpx.AsyncClient, session_rows: Rows, variant: str
) -> None:
    secret = signed_in.cookies[COOKIE]
    mutated = LIVE_VARIANTS[variant](secret)
    assert mutated != secret
    async with httpx.AsyncClient(
        transport=signed_in._transport,
        base_url=str(signed_in.base_url),
        headers={"Origin": str(signed_in.base_url).rstrip("/")},
    ) as other:
        await _probe_all(other, f"{COOKIE}={mutated}".encode())
    assert session_rows() == 1
    assert (await signed_in.get("/auth/me")).status_code == 200


# --- Bodies: malformed JSON, wrong media types, wrong shapes ----------------------------

MALFORMED_JSON = {
    "empty": b"",
    "open-brace": b"{",
    "truncated": b'{"email": "a@example.com", "password": ',
    "single-quotes": b"{'email': 'a@example.com', 'password': 'x'}",
    "trailing-garbage": b'{"email": "a@example.com", "password": "x"} x',
    "two-documents": b"{}{}",
    "bare-word": b"hello",
    "invalid-utf8": b'{"email": "\xff\xfe", "password": "x"}',
    "lone-utf8-continuation": b'{"email": "\x80"}',
    "deep-arrays": b"[" * 15_000,
    "deep-objects": b'{"a":' * 3_000,
    "unterminated-string": b'{"email": "a',
    "comment": b'{"email": "a@example.com" /* x */}',
}


@pytest.mark.parametrize("body", MALFORMED_JSON.values(), ids=MALFORMED_JSON.keys())
async def test_malformed_json_is_400_invalid_json(client: httpx.AsyncClient, body: bytes) -> None:
    assert len(body) <= MAX_BODY
    response = await client.post("/auth/login", content=body, headers={"Content-Type": JSON})
    assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
async def test_json_that_is_not_utf8_is_400_invalid_json(
    client: httpx.AsyncClient, user_email: str, session_rows: Rows, encoding: str
) -> None:
    """RFC 8259 section 8.1: JSON between systems is UTF-8. A UTF-16 body is not JSON here.

    Accepting it lets a body that a UTF-8-only filter in front of us cannot read sign in.
    """
    body = json.dumps({"email": user_email, "password": PASSWORD}).encode(encoding)
    response = await client.post(
        "/auth/login", content=body, headers={"Content-Type": f"{JSON}; charset={encoding}"}
    )
    assert_error(response, 400, "invalid_json")
    assert response.headers.get_list("set-cookie") == []
    assert session_rows() == 0


UNSUPPORTED_TYPES = {
    "missing": None,
    "text-plain": "text/plain",
    "text-plain-charset": "text/plain; charset=utf-8",
    "multipart": "multipart/form-data; boundary=xyz",
    "json-patch": "application/json-patch+json",
    "xml": "application/xml",
    "json-suffix-typo": "application/jsonx",
    "empty": "",
}


@pytest.mark.parametrize("content_type", UNSUPPORTED_TYPES.values(), ids=UNSUPPORTED_TYPES.keys())
@pytest.mark.parametrize("path", ["/auth/login", "/auth/register"])
async def test_unsupported_content_type_is_415(
    client: httpx.AsyncClient, user_email: str, path: str, content_type: str | None
) -> None:
    body = json.dumps({"email": user_email, "password": PASSWORD}).encode()
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await client.post(path, content=body, headers=headers)
    assert_error(response, 415, "unsupported_media_type")
    assert response.headers.get_list("set-cookie") == []


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data; boundary=x", None])
async def test_cookie_authenticated_endpoints_refuse_simple_content_types(
    signed_in: httpx.AsyncClient, content_type: str | None
) -> None:
    secret = signed_in.cookies[COOKIE]
    headers = {} if content_type is None else {"Content-Type": content_type}
    reauth = await signed_in.post(
        "/auth/reauth", content=json.dumps({"password": PASSWORD}), headers=headers
    )
    assert_error(reauth, 415, "unsupported_media_type")
    change = await signed_in.post(
        "/auth/password",
        content=json.dumps({"current_password": PASSWORD, "new_password": PASSWORD + "!"}),
        headers=headers,
    )
    assert_error(change, 415, "unsupported_media_type")
    assert signed_in.cookies[COOKIE] == secret
    assert (await signed_in.get("/auth/me")).status_code == 200


WRONG_SHAPES: dict[str, tuple[object, str]] = {
    "null": (None, "The body must be a JSON object."),
    "array": ([], "The body must be a JSON object."),
    "array-of-object": ([{"email": "a@example.com", "password": "x"}], "JSON object"),
    "string": ("ann@example.com", "The body must be a JSON object."),
    "number": (42, "The body must be a JSON object."),
    "true": (True, "The body must be a JSON object."),
    "empty-object": ({}, "email: "),
    "missing-password": ({"email": "a@example.com"}, "password: "),
    "missing-email": ({"password": "x"}, "email: "),
    "email-number": ({"email": 1, "password": "x"}, "email: "),
    "email-bool": ({"email": True, "password": "x"}, "email: "),
    "email-object": ({"email": {"$ne": None}, "password": "x"}, "email: "),
    "email-list": ({"email": ["a@example.com"], "password": "x"}, "email: "),
    "password-list": ({"email": "a@example.com", "password": ["x"]}, "password: "),
    "password-null": ({"email": "a@example.com", "password": None}, "password: "),
    "password-number": ({"email": "a@example.com", "password": 12345678}, "password: "),
    "password-object": ({"email": "a@example.com", "password": {"$gt": ""}}, "password: "),
    "password-empty": ({"email": "a@example.com", "password": ""}, "password: "),
    "email-empty": ({"email": "", "password": "x"}, "email: "),
    "email-lone-surrogate": ({"email": "\ud800@example.com", "password": "x"}, "email: "),
    "password-lone-surrogate": ({"email": "a@example.com", "password": "\udfff"}, "password: "),
    "password-nul": ({"email": "a@example.com", "password": "abc\x00def"}, "password: "),
    "email-nul": ({"email": "a@example.com\x00", "password": "x"}, "email: "),
    "password-too-long": ({"email": "a@example.com", "password": "p" * 4097}, "password: "),
    "email-overlong": ({"email": "a" * 310 + "@example.com", "password": "x"}, "email: "),
}


@pytest.mark.parametrize(("document", "detail"), WRONG_SHAPES.values(), ids=WRONG_SHAPES.keys())
@pytest.mark.parametrize("path", ["/auth/login", "/auth/register"])
async def test_wrong_shape_is_422_naming_the_problem(
    client: httpx.AsyncClient, session_rows: Rows, path: str, document: object, detail: str
) -> None:
    response = await client.post(path, content=json.dumps(document), headers={"Content-Type": JSON})
    body = assert_error(response, 422, "invalid_request")
    assert detail in body["detail"]
    assert session_rows() == 0


async def test_lone_surrogates_and_nul_are_refused_on_password_change(
    signed_in: httpx.AsyncClient,
) -> None:
    for document, field in [
        ({"current_password": PASSWORD, "new_password": "a long new password \ud800"}, "new"),
        ({"current_password": "\udc00", "new_password": "a long new password ok"}, "current"),
        ({"current_password": PASSWORD, "new_password": "a long new\x00password"}, "new"),
    ]:
        response = await signed_in.post(
            "/auth/password", content=json.dumps(document), headers={"Content-Type": JSON}
        )
        body = assert_error(response, 422, "invalid_request")
        assert body["detail"].startswith(f"{field}_password: ")
    # Nothing changed: the old password still works.
    assert (await signed_in.post("/auth/reauth", json={"password": PASSWORD})).status_code == 200


async def test_extra_huge_field_is_ignored_not_fatal(
    client: httpx.AsyncClient, user_email: str
) -> None:
    document = {"email": user_email, "password": PASSWORD, "junk": "j" * 15_000}
    response = await client.post(
        "/auth/login", content=json.dumps(document), headers={"Content-Type": JSON}
    )
    assert response.status_code == 200
    assert set(response.json()) == {"user", "csrf_token"}


async def test_extra_fields_cannot_smuggle_a_user_id(
    client: httpx.AsyncClient, user_email: str
) -> None:
    document = {"email": "b@example.com", "password": PASSWORD, "id": "x", "disabled": True}
    response = await client.post("/auth/register", json=document)
    assert response.status_code == 201
    assert response.json()["id"] != "x"
    assert set(response.json()) == {"id", "email"}


FORMS: dict[str, tuple[bytes, int, str]] = {
    "duplicate-email": (b"email=a%40example.com&email=b%40example.com&password=x", 422, "repeated"),
    "duplicate-password": (b"email=a%40example.com&password=x&password=y", 422, "repeated"),
    "invalid-utf8": (b"email=\xff\xfe&password=x", 422, "UTF-8"),
    "too-many-fields": (b"&".join(b"f%d=1" % i for i in range(40)), 422, ""),
    "nul-in-password": (b"email=a%40example.com&password=x%00y", 422, "password: "),
    "empty-password": (b"email=a%40example.com&password=", 422, "password: "),
    "no-fields": (b"", 422, "email: "),
    "bad-percent-escape": (b"email=%ZZ&password=x", 401, ""),
    "truncated-percent-escape": (b"email=a%40example.com%&password=x%", 401, ""),
    "percent-encoded-bad-utf8": (b"email=a%40example.com&password=%FF%FE", 422, "UTF-8"),
    "lone-surrogate-percent": (b"email=%ED%A0%80%40example.com&password=x", 422, "UTF-8"),
    "semicolon-separator": (b"email=a%40example.com;password=x", 422, "password: "),
}


@pytest.mark.parametrize(("body", "status", "detail"), FORMS.values(), ids=FORMS.keys())
async def test_hostile_form_bodies_are_4xx(
    client: httpx.AsyncClient, body: bytes, status: int, detail: str
) -> None:
    await client.get("/auth/csrf")  # the form's pre-session token, as the sign-in page has
    response = await client.post("/auth/login", content=body, headers={"Content-Type": FORM})
    payload = assert_error(response, status)
    assert detail in payload["detail"]


async def test_form_percent_decoding_is_strict_not_lossy(client: httpx.AsyncClient) -> None:
    """Percent-escapes that are not UTF-8 must be refused, not replaced with U+FFFD.

    JSON refuses lone surrogates (422); a form must not launder the same bytes. With
    lossy decoding every invalid byte becomes U+FFFD, so two different passwords
    (``...%FF`` and ``...%FE``) are one and the same.
    """
    quoted = "correct+horse+battery+staple"
    register = await client.post(
        "/auth/register",
        content=f"email=eve%40example.com&password={quoted}%FF".encode(),
        headers={"Content-Type": FORM},
    )
    login = await client.post(
        "/auth/login",
        content=f"email=eve%40example.com&password={quoted}%FE".encode(),
        headers={"Content-Type": FORM},
    )
    assert login.status_code in {401, 422}, "a different password signed in"
    assert_error(register, 422, "invalid_request")


EMAILS_REFUSED = {
    "overlong-321": "a" * 309 + "@example.com",
    "local-part-dots": "ann..lee@example.com",
    "domain-dots": "ann@example..com",
    "no-at": "ann.example.com",
    "two-ats": "ann@lee@example.com",
    "right-to-left-override": "ann\u202e@example.com",
    "zero-width-joiner": "ann@exa\u200dmple.com",
    "noncharacter": "ann@ex\uffffample.com",
    "label-over-63": "ann@" + "a" * 64 + ".com",
    "ip-literal": "ann@[127.0.0.1]",
    "quoted-local": '"ann lee"@example.com',
    "no-dot-domain": "ann@localhost",
    "crlf-header-injection": "ann@example.com\r\nBcc: all@example.com",
}


@pytest.mark.parametrize("email", EMAILS_REFUSED.values(), ids=EMAILS_REFUSED.keys())
async def test_invalid_emails_are_refused_at_registration(
    client: httpx.AsyncClient, email: str
) -> None:
    response = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
    body = assert_error(response, 422)
    assert body["error"] in {"invalid_email", "invalid_request"}
    # and signing in with them is the same indistinct failure as any unknown account
    login = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code in {401, 422}
    assert_error(login, login.status_code)


async def test_idn_and_unicode_emails_normalise_to_one_account(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/auth/register", json={"email": "Ann@BÜCHER.example", "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    assert created.json()["email"] == "ann@bücher.example"
    for alias in ["ann@xn--bcher-kva.example", "ANN@bücher.EXAMPLE", " ann@bücher.example "]:
        again = await client.post("/auth/register", json={"email": alias, "password": PASSWORD})
        assert_error(again, 409, "email_taken")
    login = await client.post(
        "/auth/login", json={"email": "ann@xn--bcher-kva.example", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text

    local = await client.post(
        "/auth/register", json={"email": "ännchen@example.com", "password": PASSWORD}
    )
    assert local.status_code == 201
    assert local.json()["email"] == "ännchen@example.com"


# --- Property tests: nothing from the network makes a 5xx -------------------------------

CONTENT_TYPES = st.sampled_from(
    [JSON, FORM, "text/plain", f"{JSON}; charset=utf-16", "multipart/form-data", None]
)
BODY_PATHS = st.sampled_from(["/auth/login", "/auth/register", "/auth/reauth", "/auth/password"])


@FUZZ
@given(body=st.binary(max_size=2048), content_type=CONTENT_TYPES, path=BODY_PATHS)
async def test_fuzz_random_body_bytes_never_5xx(
    signed_in: httpx.AsyncClient, body: bytes, content_type: str | None, path: str
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = await signed_in.post(path, content=body, headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_error(response, response.status_code)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(["email", "password", "current_password", "new_password"]) | st.text(
    max_size=8
)


@FUZZ
@given(document=st.dictionaries(FIELDS, JSON_VALUES, max_size=5), path=BODY_PATHS)
async def test_fuzz_json_documents_never_5xx(
    signed_in: httpx.AsyncClient, document: dict[str, Any], path: str
) -> None:
    """Lone surrogates, NaN, huge integers, nesting: all 4xx (or a real success)."""
    response = await signed_in.post(
        path, content=json.dumps(document), headers={"Content-Type": JSON}
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_error(response, response.status_code)


COOKIE_VALUES = st.binary(max_size=300) | st.text(max_size=100).map(str.encode)


@every_backend
@FUZZ
@given(raw=COOKIE_VALUES, named=st.booleans())
async def test_fuzz_cookie_header_never_5xx_and_creates_nothing(
    client: httpx.AsyncClient, session_rows: Rows, raw: bytes, named: bool
) -> None:
    header = f"{COOKIE}=".encode() + raw if named else raw
    cookie = [(b"cookie", header)]
    me = await client.get("/auth/me", headers=cookie)
    assert_error(me, 401)
    logout = await client.post("/auth/logout", headers=cookie)
    assert logout.status_code == 204
    assert session_rows() == 0
