"""Request bodies: JSON or HTML-form, validated by Pydantic, with errors in the house shape."""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, ValidationError
from starlette.requests import Request

from velvetrope.errors import InvalidInput
from velvetrope.web.errors import InvalidJson, UnsupportedMediaType

__all__ = [
    "Credentials",
    "PasswordChange",
    "PasswordProof",
    "RevokeRequest",
    "SignInCredentials",
    "TokenRequest",
    "form_or_json_schema",
    "read_body",
]

M = TypeVar("M", bound=BaseModel)

_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"
_MAX_FIELDS = 16


def _encodable(value: str) -> str:
    # JSON may carry lone surrogates ("\ud800"); they cannot be UTF-8 and must not
    # reach hashing or storage.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[StrictStr, AfterValidator(_encodable)]
NO_NUL = "^[^\\u0000]*$"
"""What ``Text`` accepts, as far as JSON Schema says it (lone surrogates cannot be sent as
UTF-8 anyway)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# The longest password the policy ever accepts (PasswordPolicy.max_length): a longer
# one cannot be right, and the limit keeps every body of these fields under
# max_body_bytes even when each character is sent as a 12-byte escape.
PASSWORD_MAX = 1024
EMAIL_MAX = 320
Email = Annotated[
    Text, Field(min_length=1, max_length=EMAIL_MAX, json_schema_extra={"format": "email"})
]
Password = Annotated[Text, Field(min_length=1, max_length=PASSWORD_MAX)]


class Credentials(_Body):
    """An email address and a password."""

    email: Email
    password: Password


class SignInCredentials(Credentials):
    """An email address, a password, and whether the browser should remember the
    sign-in (``remember``; the API takes an absent one as ``true``, the sign-in page's
    unchecked box as ``false``)."""

    remember: bool | None = None


class PasswordProof(_Body):
    """The current password, to re-authenticate."""

    password: Password


class PasswordChange(_Body):
    """The current password and the new one."""

    current_password: Password
    new_password: Password


GRANT_TYPES = ("password", "refresh_token")


class TokenRequest(_Body):
    """An OAuth 2.0 token request (RFC 6749 §4.3 and §6).

    ``grant_type`` is documented as the enum it is; another value is still answered
    as RFC 6749 §5.2 says (``400 unsupported_grant_type``), not as a validation error.
    """

    grant_type: Annotated[
        Text, Field(min_length=1, max_length=64, json_schema_extra={"enum": list(GRANT_TYPES)})
    ]
    username: Email | None = None
    password: Password | None = None
    # Ours are 43 characters; an access token sent by mistake is still answered
    # invalid_grant (JWT-13), not invalid_request. The caps keep the largest token request
    # (every field at its maximum, 12 bytes a character) under max_body_bytes.
    refresh_token: Annotated[Text, Field(min_length=1, max_length=2048)] | None = None
    scope: Annotated[Text, Field(max_length=256)] | None = None


class RevokeRequest(_Body):
    """An OAuth 2.0 token revocation request (RFC 7009 §2.1)."""

    # An access token (a JWT that fits a 4 KiB cookie, COOK-07) or a refresh token.
    token: Annotated[Text, Field(min_length=1, max_length=4096)]
    token_type_hint: Annotated[Text, Field(max_length=64)] | None = None


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def _parse(media_type: str, raw: bytes) -> Any:
    if media_type == _JSON:
        try:
            # RFC 8259 §8.1: UTF-8 only. json.loads(bytes) would also guess UTF-16/32,
            # which filters in front of us may not read the same way.
            return json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            raise InvalidJson from None
    if media_type == _FORM:
        try:
            # errors="strict": a lossy decode would make %FF and %FE the same password.
            pairs = parse_qsl(
                raw.decode("utf-8"),
                keep_blank_values=True,
                max_num_fields=_MAX_FIELDS,
                errors="strict",
            )
        except UnicodeDecodeError:
            raise InvalidInput("The form body is not valid UTF-8 form data.") from None
        except ValueError:
            raise InvalidInput(f"The form has more than {_MAX_FIELDS} fields.") from None
        fields = dict(pairs)
        if len(fields) != len(pairs):
            raise InvalidInput("A form field is repeated.")
        return fields
    raise UnsupportedMediaType


async def read_body(request: Request, model: type[M]) -> M:
    """Read and validate the body as ``model``.

    Raises:
        UnsupportedMediaType: Neither JSON nor form-encoded.
        InvalidJson: Unparseable JSON.
        InvalidInput: The data does not fit ``model``; the sentence names the field.
    """
    data = _parse(_media_type(request), await request.body())
    if not isinstance(data, dict):
        raise InvalidInput("The body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidInput(f"{where}: {message}.") from None


_FORM_BOOLEAN = {"type": "string", "enum": ["true", "false", "on", "off", "1", "0"]}
"""A boolean field in a form body: the words pydantic reads as one (a checkbox sends on)."""


def _is_boolean(field: dict[str, Any]) -> bool:
    return any(option.get("type") == "boolean" for option in field.get("anyOf", [field]))


def form_or_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI ``requestBody`` for an endpoint that takes ``model`` as JSON or a form."""
    schema = model.model_json_schema()
    for field in schema.get("properties", {}).values():
        for option in field.get("anyOf", [field]):
            if option.get("type") == "string":  # every string is Text: no NUL (see _encodable)
                option.setdefault("pattern", NO_NUL)
    # A form's fields are strings, each named once, and there are at most _MAX_FIELDS; a
    # yes/no field is one of the words the model reads as a boolean (a form has no null).
    properties = {
        name: _FORM_BOOLEAN if _is_boolean(field) else field
        for name, field in schema.get("properties", {}).items()
    }
    form = schema | {
        "properties": properties,
        "additionalProperties": {"type": "string"},
        "maxProperties": _MAX_FIELDS,
    }
    return {
        "requestBody": {
            "required": True,
            "content": {_JSON: {"schema": schema}, _FORM: {"schema": form}},
        }
    }
