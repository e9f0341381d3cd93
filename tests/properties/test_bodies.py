"""The form and JSON body decoders (``web/bodies.py``): any body, under any content
type, is the model or one of the documented errors (``invalid_json``,
``invalid_input``, ``unsupported_media_type``), never another exception."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel
from starlette.requests import Request

from tests.properties.strategies import JSON_VALUES, PROPERTIES, json_objects
from velvetrope.errors import InvalidInput
from velvetrope.web.bodies import (
    Credentials,
    PasswordChange,
    PasswordProof,
    RevokeRequest,
    SignInCredentials,
    TokenRequest,
    read_body,
)
from velvetrope.web.errors import InvalidJson, UnsupportedMediaType

MODELS: list[type[BaseModel]] = [
    Credentials,
    SignInCredentials,
    PasswordProof,
    PasswordChange,
    TokenRequest,
    RevokeRequest,
]
DOCUMENTED = (InvalidJson, InvalidInput, UnsupportedMediaType)
CONTENT_TYPES = [
    b"application/json",
    b"application/json; charset=utf-8",
    b"APPLICATION/JSON",
    b"application/x-www-form-urlencoded",
    b"application/x-www-form-urlencoded; charset=latin-1",
    b"text/plain",
    b"multipart/form-data; boundary=x",
    b"",
]
FIELDS = ["email", "password", "current_password", "new_password", "grant_type"]
FIELDS += ["username", "refresh_token", "scope", "token", "token_type_hint", "remember"]

text_values = st.text(max_size=60) | st.text(
    st.characters(categories=["Cs", "Cc", "Ll"]), max_size=10
)
BOOLEAN_WORDS = st.sampled_from(["true", "false", "on", "off", "1", "0", "yes", "no", "", "TRUE"])
objects = json_objects(**{name: text_values | JSON_VALUES for name in FIELDS})


def _dumps(value: Any) -> bytes:
    # lone surrogates become \\ud800 escapes, as a hostile client would send them
    return json.dumps(value).encode()


bodies = (
    st.binary(max_size=400)
    | JSON_VALUES.map(_dumps)
    | objects.map(_dumps)
    | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), st.text(max_size=40)).map(
        lambda d: urlencode(d, errors="surrogatepass").encode()
    )
    | st.lists(st.tuples(st.sampled_from(FIELDS), st.binary(max_size=20)), max_size=20).map(
        lambda pairs: b"&".join(k.encode() + b"=" + v for k, v in pairs)
    )
)


def request(content_type: bytes, body: bytes) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/auth/login",
        "headers": [(b"content-type", content_type)] if content_type else [],
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


@PROPERTIES
@given(st.sampled_from(MODELS), st.sampled_from(CONTENT_TYPES), bodies)
def test_RES_02_any_body_is_the_model_or_a_documented_error(
    model: type[BaseModel], content_type: bytes, body: bytes
) -> None:
    try:
        value = asyncio.run(read_body(request(content_type, body), model))
    except DOCUMENTED:
        return  # each carries its code and sentence (the error table is tested elsewhere)
    assert isinstance(value, model)
    for field in type(value).model_fields:
        text = getattr(value, field)
        if isinstance(text, str):
            text.encode("utf-8")  # only valid Unicode reaches hashing and storage
            assert "\x00" not in text


@PROPERTIES
@given(st.emails(), st.text(min_size=1, max_size=100).filter(lambda t: "\x00" not in t))
def test_RES_02_valid_credentials_decode_from_json_and_from_a_form(
    email: str, password: str
) -> None:
    """The positive control: the same fields arrive whole in either encoding."""
    expected = Credentials(email=email, password=password)
    as_json = _dumps({"email": email, "password": password})
    as_form = urlencode({"email": email, "password": password}).encode()
    for content_type, body in ((b"application/json", as_json), (CONTENT_TYPES[3], as_form)):
        assert asyncio.run(read_body(request(content_type, body), Credentials)) == expected


@PROPERTIES
@given(st.emails(), BOOLEAN_WORDS | st.text(max_size=8), st.sampled_from(CONTENT_TYPES[:4]))
def test_RES_02_the_remember_box_is_a_boolean_or_invalid_input(
    email: str, remember: str, content_type: bytes
) -> None:
    """The sign-in form's boolean: any value is ``True``/``False`` or ``invalid_input``."""
    fields = {"email": email, "password": "x" * 15, "remember": remember}
    if b"json" in content_type.lower():
        body = _dumps(fields)
    else:
        body = urlencode(fields, errors="surrogatepass").encode()
    try:
        value = asyncio.run(read_body(request(content_type, body), SignInCredentials))
    except InvalidInput:
        assert remember.strip().lower() not in {"true", "false", "1", "0"}
        return
    assert value.remember in (True, False)
