"""The password policy's lengths (``core/passwords.py``) against the OpenAPI document:
any string the document's ``minLength``/``maxLength`` allow is never refused for its
length, and any it refuses is, whatever Unicode normalisation makes of it."""

from __future__ import annotations

from functools import cache
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.properties.strategies import PROPERTIES
from tests.support.services import app_settings
from velvetrope import create_app
from velvetrope.core.passwords import PasswordPolicy
from velvetrope.errors import WeakPassword

# Characters NFKC lengthens (ligatures, ﷺ), shortens (combining marks) or keeps.
EXPANDING = "\ufb00\ufb01\ufb03\ufdfa\u3392\u2474"
COMBINING = "\u0301\u0302\u0308\u0327"
passwords = st.text(
    st.sampled_from(EXPANDING + COMBINING + "aeiouZq7#") | st.characters(), max_size=1100
) | st.text(st.sampled_from(EXPANDING + COMBINING + "kp"), min_size=5, max_size=20)


@cache
def _schema() -> dict[str, Any]:
    document = create_app(app_settings()).openapi()
    body = document["paths"]["/auth/register"]["post"]["requestBody"]["content"]
    return body["application/json"]["schema"]["properties"]["password"]  # type: ignore[no-any-return]


@PROPERTIES
@given(passwords)
def test_PW_05_the_policy_refuses_for_length_exactly_what_the_schema_does(password: str) -> None:
    schema = _schema()
    allowed = schema["minLength"] <= len(password) <= schema["maxLength"]
    refused = ""
    try:
        PasswordPolicy().check(password)
    except WeakPassword as exc:
        refused = exc.detail
    assert ("characters long" in refused) is not allowed, (len(password), refused)
