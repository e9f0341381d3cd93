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


class PasswordProof(_Body):
    """The current password, to re-authenticate."""

    password: Annotated[Text, Field(min_length=1, max_length=4096)]


class PasswordChange(_Body):
    """The current password and the new one."""

    current_password: Annotated[Text, Field(min_length=1, max_length=4096)]
    new_password: Annotated[Text, Field(min_length=1, max_length=4096)]


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def _parse(media_type: str, raw: bytes) -> Any:
    if media_type == _JSON:
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise InvalidJson from None
    if media_type == _FORM:
        try:
            pairs = parse_qsl(
                raw.decode("utf-8"), keep_blank_values=True, max_num_fields=_MAX_FIELDS
            )
        except (UnicodeDecodeError, ValueError):
            raise InvalidInput("The form body is not valid UTF-8 form data.") from None
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
