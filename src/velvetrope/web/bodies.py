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


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Credentials(_Body):
    """An email address and a password."""

    email: Annotated[Text, Field(min_length=1, max_length=320)]
    password: Annotated[Text, Field(min_length=1, max_length=4096)]


class SignInCredentials(Credentials):
    """An email address, a password, and whether the browser should remember the
    sign-in (``remember``; the API takes an absent one as ``true``, the sign-in page's
    unchecked box as ``false``)."""

    remember: bool | None = None


class PasswordProof(_Body):
    """The current password, to re-authenticate."""

    password: Annotated[Text, Field(min_length=1, max_length=4096)]


class PasswordChange(_Body):
    """The current password and the new one."""

    current_password: Annotated[Text, Field(min_length=1, max_length=4096)]
    new_password: Annotated[Text, Field(min_length=1, max_length=4096)]


class TokenRequest(_Body):
    """An OAuth 2.0 token request (RFC 6749 §4.3 and §6)."""

    grant_type: Annotated[Text, Field(min_length=1, max_length=64)]
    username: Annotated[Text, Field(min_length=1, max_length=320)] | None = None
    password: Annotated[Text, Field(min_length=1, max_length=4096)] | None = None
    refresh_token: Annotated[Text, Field(min_length=1, max_length=8192)] | None = None
    scope: Annotated[Text, Field(max_length=1024)] | None = None


class RevokeRequest(_Body):
    """An OAuth 2.0 token revocation request (RFC 7009 §2.1)."""

    token: Annotated[Text, Field(min_length=1, max_length=8192)]
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


def form_or_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI ``requestBody`` for an endpoint that takes ``model`` as JSON or a form."""
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {_JSON: {"schema": schema}, _FORM: {"schema": schema}},
        }
    }
