"""Errors -> HTTP, in one table. Every error body is ``{"error": code, "detail": sentence}``.

Nothing that reaches a client carries a stack trace, a secret or an echo of a token:
unexpected exceptions become a bare 500 ``internal_error`` and are logged server-side.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from velvetrope.errors import (
    AccountDisabled,
    AuthError,
    ConfigurationError,
    CsrfFailed,
    DPoPNonceRequired,
    EmailTaken,
    GatewayAudienceUnknown,
    HashingBusy,
    InvalidClaims,
    InvalidCredentials,
    InvalidDeviceProof,
    InvalidInput,
    InvalidToken,
    NotAuthenticated,
    NotFound,
    OAuthError,
    ReauthRequired,
    StoreUnavailable,
    TooManyAttempts,
    UseDPoPNonce,
)

__all__ = [
    "HeaderTooLarge",
    "InvalidJson",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "error_response",
    "install_error_handlers",
]

_logger = logging.getLogger("velvetrope.web")

CHALLENGE = 'Bearer realm="velvetrope"'
INVALID_TOKEN_CHALLENGE = 'Bearer realm="velvetrope", error="invalid_token"'  # noqa: S105


class InvalidJson(InvalidInput):
    """The body is not parseable JSON."""

    code = "invalid_json"
    default_detail = "The request body is not valid JSON."


class UnsupportedMediaType(InvalidInput):
    """The body's content type is not one the endpoint takes."""

    code = "unsupported_media_type"
    default_detail = "Send the body as application/json or application/x-www-form-urlencoded."


class PayloadTooLarge(InvalidInput):
    """The body is larger than ``max_body_bytes``."""

    code = "payload_too_large"
    default_detail = "The request body is too large."


class HeaderTooLarge(InvalidInput):
    """The Cookie header is larger than ``max_cookie_bytes``."""

    code = "header_too_large"
    default_detail = "The request's cookies are too large."


Headers = Callable[[AuthError], Mapping[str, str]]


def _retry_after(exc: AuthError) -> dict[str, str]:
    assert isinstance(exc, TooManyAttempts)  # noqa: S101 - the table pairs them
    return {"Retry-After": str(max(1, int(exc.retry_after.total_seconds() + 0.999)))}


def _challenge(default: str) -> Headers:
    """``WWW-Authenticate``: the challenge the refusing way in chose, else ``default``;
    with the nonce to use when the refusal asks for a DPoP nonce (RFC 9449 section 8)."""

    def headers(exc: AuthError) -> Mapping[str, str]:
        chosen = exc.challenge if isinstance(exc, NotAuthenticated) else None
        found = {"WWW-Authenticate": chosen or default}
        if isinstance(exc, UseDPoPNonce):
            found["DPoP-Nonce"] = exc.nonce
        return found

    return headers


def _nonce(exc: AuthError) -> Mapping[str, str]:
    assert isinstance(exc, DPoPNonceRequired)  # noqa: S101 - the table pairs them
    return {"DPoP-Nonce": exc.nonce}


# Most specific first: the first class that matches decides.
STATUS: tuple[tuple[type[AuthError], int, Headers | None], ...] = (
    (InvalidJson, 400, None),
    (UnsupportedMediaType, 415, None),
    (PayloadTooLarge, 413, None),
    (HeaderTooLarge, 431, None),
    (InvalidInput, 422, None),
    (DPoPNonceRequired, 400, _nonce),
    (OAuthError, 400, None),
    (InvalidDeviceProof, 400, None),
    (InvalidToken, 401, _challenge(INVALID_TOKEN_CHALLENGE)),
    (EmailTaken, 409, None),
    (InvalidCredentials, 401, lambda _: {"WWW-Authenticate": CHALLENGE}),
    (NotAuthenticated, 401, _challenge(CHALLENGE)),
    (AccountDisabled, 403, None),
    (ReauthRequired, 403, None),
    (CsrfFailed, 403, None),
    (GatewayAudienceUnknown, 403, None),
    (NotFound, 404, None),
    (HashingBusy, 503, _retry_after),
    (TooManyAttempts, 429, _retry_after),
    (StoreUnavailable, 503, lambda _: {"Retry-After": "5"}),
    (ConfigurationError, 500, None),
)


def error_response(exc: AuthError) -> JSONResponse:
    """Build the HTTP response for ``exc`` from the table."""
    status, headers = next(
        ((status, headers) for cls, status, headers in STATUS if isinstance(exc, cls)), (400, None)
    )
    detail = exc.detail
    if isinstance(exc, StoreUnavailable):
        _logger.error("store unavailable: %s", exc.detail)
        detail = StoreUnavailable.default_detail  # backend details stay in the log
    if isinstance(exc, InvalidClaims):
        detail = InvalidClaims.default_detail  # the app's bug: details in velvetrope.hooks
    body = {"error": exc.code, "detail": detail}
    if isinstance(exc, OAuthError | TooManyAttempts):
        body["error_description"] = detail  # RFC 6749 §5.2 field for token clients
    if isinstance(exc, InvalidToken):
        _logger.info("rejected bearer token: %s", exc.reason)
    return JSONResponse(
        body,
        status_code=status,
        headers=dict(headers(exc)) if headers else None,
    )


def _plain(
    status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


_HTTP_CODES = {
    404: ("not_found", "There is nothing at this path."),
    405: ("method_not_allowed", "This method is not allowed on this path."),
}


async def _on_auth_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthError)  # noqa: S101 - registered for AuthError only
    return error_response(exc)


async def _on_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    message = f"{where}: {first.get('msg', 'invalid value')}" if where else "invalid request"
    return _plain(422, "invalid_request", message)


async def _on_http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    code, detail = _HTTP_CODES.get(exc.status_code, ("http_error", str(exc.detail)))
    return _plain(exc.status_code, code, detail, exc.headers)


async def _on_unexpected(_: Request, exc: Exception) -> Response:
    _logger.exception("unhandled error", exc_info=exc)
    return _plain(500, "internal_error", "Something went wrong on our side.")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the JSON shape above."""
    app.add_exception_handler(AuthError, _on_auth_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
