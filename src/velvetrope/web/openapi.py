"""The OpenAPI document, exact: what each operation answers, and how to authenticate.

Routes declare the *errors they raise* (``responses=answers(EmailTaken, ...)``); the
statuses, the codes and the headers come from the one error table
(:data:`velvetrope.web.errors.STATUS`), so the document cannot drift from what the
server sends. :func:`install_openapi` then adds what every operation of the standalone
server can answer before any route runs (the request limits, the origin check), the
security schemes of the configured ways in, the settings that bound request bodies
(the password policy's lengths), and ``503 hashing_busy`` on every operation whose body
carries a password (:data:`PASSWORD_FIELDS`): whatever takes a password hashes it, and
a full hashing queue sheds it (:class:`~velvetrope.errors.HashingBusy`), so no route
can forget to list it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from velvetrope.errors import (
    AuthError,
    CsrfFailed,
    DeviceBindingRequired,
    DPoPNonceRequired,
    HashingBusy,
    InvalidCredentials,
    InvalidDPoPProof,
    InvalidInput,
    InvalidToken,
    NotAuthenticated,
    OAuthError,
    SessionExpired,
    SessionInvalid,
    StoreUnavailable,
    TooManyAttempts,
    UseDPoPNonce,
)
from velvetrope.web.backends import AuthBackend
from velvetrope.web.errors import (
    STATUS,
    HeaderTooLarge,
    InvalidJson,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from velvetrope.web.transports import BearerTransport, CookieTransport, DPoPTransport

__all__ = [
    "AUTHENTICATED",
    "BODY",
    "BROWSER",
    "BROWSER_OPTIONAL",
    "GUESSABLE",
    "LINKS",
    "OPTIONAL_AUTH",
    "PASSWORD_FIELDS",
    "SIGNED_IN",
    "Extra",
    "answers",
    "install_openapi",
    "sets_cookie",
    "status_of",
]

BODY: tuple[type[AuthError], ...] = (UnsupportedMediaType, InvalidJson, InvalidInput)
"""What reading a JSON-or-form body can raise (``read_body``)."""

AUTHENTICATED: tuple[type[AuthError], ...] = (
    NotAuthenticated,
    SessionInvalid,
    SessionExpired,
    DeviceBindingRequired,
    InvalidToken,
    InvalidDPoPProof,
    UseDPoPNonce,
    CsrfFailed,
    StoreUnavailable,
)
"""What the request check (``Gate.principal``) can raise."""

Extra = tuple[int, str, str]
"""A status the route answers outside the error tree: ``(status, code, description)``."""

# The headers the table's header functions send, by the class that triggers them; a
# test (tests/web/test_openapi.py) checks each against ``error_response``.
_HEADERS: tuple[tuple[type[AuthError], str], ...] = (
    (NotAuthenticated, "WWW-Authenticate"),
    (InvalidCredentials, "WWW-Authenticate"),
    (TooManyAttempts, "Retry-After"),
    (StoreUnavailable, "Retry-After"),
    (UseDPoPNonce, "DPoP-Nonce"),
    (DPoPNonceRequired, "DPoP-Nonce"),
)

HEADER_DOCS: Mapping[str, dict[str, Any]] = {
    "WWW-Authenticate": {
        "description": "The challenge of the way in that refused (RFC 9110 section 11.6.1; "
        "Bearer per RFC 6750, DPoP per RFC 9449).",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds until the request may be repeated (RFC 9110 section 10.2.3).",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "DPoP-Nonce": {
        "description": "The nonce to put in the next DPoP proof (RFC 9449 section 8).",
        "schema": {"type": "string"},
    },
    "Set-Cookie": {
        "description": "The browser credential (session cookie, or its clearing); "
        "Secure, HttpOnly, SameSite=Lax, Path=/ under the __Host- prefix.",
        "schema": {"type": "string"},
    },
    "Secure-Session-Challenge": {
        "description": "A single-use challenge for the device key to sign (DBSC).",
        "schema": {"type": "string"},
    },
}

_STATUS_TEXT = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Invalid request data",
    408: "The body did not arrive in time",
    429: "Too many attempts",
    431: "Cookies too large",
    500: "Server misconfigured",
    503: "Unavailable: a store is down (fail closed), or the server is too busy",
}


def status_of(error: type[AuthError]) -> int:
    """The HTTP status the error table gives ``error`` (the first row it is a subclass of)."""
    return next((status for cls, status, _ in STATUS if issubclass(error, cls)), 400)


def _headers_of(error: type[AuthError]) -> frozenset[str]:
    return frozenset(name for cls, name in _HEADERS if issubclass(error, cls))


def _error_schema(codes: Iterable[str], *, oauth: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "error": {"type": "string", "enum": sorted(set(codes))},
        "detail": {"type": "string", "description": "One human sentence."},
    }
    if oauth:
        properties["error_description"] = {"type": "string", "description": "RFC 6749 §5.2"}
    return {
        "type": "object",
        "title": "Error",
        "required": ["error", "detail"],
        "properties": properties,
    }


def answers(
    *raised: type[AuthError], extra: Iterable[Extra] = ()
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the errors a route raises, grouped by status.

    Args:
        raised: The :class:`AuthError` classes the route can raise (each one's own code;
            list subclasses whose code differs).
        extra: Answers outside the error tree, e.g. DBSC's ``403 challenge``.
    """
    by_status: dict[int, list[type[AuthError]]] = defaultdict(list)
    for error in raised:
        by_status[status_of(error)].append(error)
    extras: dict[int, list[Extra]] = defaultdict(list)
    for item in extra:
        extras[item[0]].append(item)
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*by_status, *extras}):
        errors = by_status.get(status, [])
        codes = {e.code for e in errors} | {code for _, code, _ in extras.get(status, [])}
        oauth = any(issubclass(e, OAuthError | TooManyAttempts) for e in errors)
        entry: dict[str, Any] = {
            "description": _STATUS_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": _error_schema(codes, oauth=oauth)}},
        }
        declared = _headers(errors, extras.get(status, []))
        if declared:
            entry["headers"] = declared
        responses[status] = entry
    return responses


def _headers(errors: list[type[AuthError]], extras: list[Extra]) -> dict[str, Any]:
    """The headers of one status: required when every answer of that status sends it."""
    sent = [_headers_of(e) for e in errors] + [frozenset() for _ in extras]
    extra = {header for _, _, header in extras if header}
    names = set().union(*sent) | extra
    return {
        name: {**HEADER_DOCS[name], "required": all(name in each for each in sent)}
        for name in sorted(names)
    }


def _schemes(backends: Iterable[AuthBackend], token_url: str) -> dict[str, dict[str, Any]]:
    """A security scheme per built-in way in (custom ways in document themselves)."""
    schemes: dict[str, dict[str, Any]] = {}
    for backend in backends:
        transport = backend.transport
        if isinstance(transport, CookieTransport):
            schemes[backend.name] = {
                "type": "apiKey",
                "in": "cookie",
                "name": transport.name,
                "description": "The browser credential POST /auth/login sets. Unsafe requests "
                "it authenticates also need X-CSRF-Token and a same-origin Origin.",
            }
        elif isinstance(transport, DPoPTransport):
            schemes[backend.name] = {
                "type": "http",
                "scheme": "DPoP",
                "description": "Authorization: DPoP <token> with a DPoP proof header signed "
                "by the token's key (RFC 9449).",
            }
        elif isinstance(transport, BearerTransport):
            schemes[backend.name] = {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "An access token from POST /auth/token (RFC 6750, RFC 9068).",
            }
    schemes["oauth2"] = {
        "type": "oauth2",
        "description": "The password grant of POST /auth/token; the token it gives is sent "
        "as Authorization: Bearer.",
        "flows": {"password": {"tokenUrl": token_url, "refreshUrl": token_url, "scopes": {}}},
    }
    return schemes


# Answered by the middleware before any route runs (web/middleware.py).
_EVERY_OPERATION = (PayloadTooLarge, HeaderTooLarge, InvalidInput)
_UNSAFE_OPERATION = (CsrfFailed, RequestTimeout)
_UNSAFE = frozenset({"post", "put", "patch", "delete"})


def _merge(operation: dict[str, Any], extra: Mapping[int | str, dict[str, Any]]) -> None:
    """Add ``extra`` responses to ``operation``, joining the codes of a shared status."""
    responses = operation.setdefault("responses", {})
    for status, entry in extra.items():
        key = str(status)
        current = responses.get(key)
        if current is None or "$ref" in str(current.get("content", {})):
            responses[key] = entry  # FastAPI's own 422 shape is not what we send
            continue
        try:
            schema = current["content"]["application/json"]["schema"]
            mine = entry["content"]["application/json"]["schema"]
            codes = set(schema["properties"]["error"]["enum"]) | set(
                mine["properties"]["error"]["enum"]
            )
        except KeyError:
            continue
        schema["properties"]["error"]["enum"] = sorted(codes)
        for name, field in mine["properties"].items():  # error_description, for OAuth clients
            schema["properties"].setdefault(name, field)
        for name, header in entry.get("headers", {}).items():
            current.setdefault("headers", {}).setdefault(name, {**header, "required": False})


PASSWORD_FIELDS = frozenset({"password", "current_password", "new_password"})
"""Request body fields holding a password: an operation taking one hashes it."""


def _takes_password(operation: Mapping[str, Any], schemas: Mapping[str, Any]) -> bool:
    """Whether a request body of ``operation`` (any media type) has a password field."""
    for media in operation.get("requestBody", {}).get("content", {}).values():
        schema = media.get("schema", {})
        ref = schema.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            schema = schemas.get(ref.rsplit("/", 1)[1], {})
        if PASSWORD_FIELDS & set(schema.get("properties", {})):
            return True
    return False


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


RESERVED_DOMAIN = (
    r"@([^@]*\.)?(" + "|".join(_any_case(name) for name in SPECIAL_USE_DOMAIN_NAMES) + r")\.?$"
)
"""An address at a special-use domain (RFC 6761): sign-up refuses those."""


def _policy_limits(document: dict[str, Any], *, min_length: int, max_length: int) -> None:
    """What sign-up and a password change enforce beyond the body's shape: the password
    policy's lengths and a deliverable-looking address."""
    for path in ("/auth/register", "/auth/password/forgot"):
        body = document["paths"].get(path, {}).get("post", {}).get("requestBody", {})
        for media in body.get("content", {}).values():
            email = media["schema"]["properties"]["email"]
            email["not"] = {"pattern": RESERVED_DOMAIN}
            email["description"] = "An address, not at a special-use domain (.test, .local...)."
    for path, field in (
        ("/auth/register", "password"),
        ("/auth/password", "new_password"),
        ("/auth/password/reset", "new_password"),
    ):
        body = document["paths"].get(path, {}).get("post", {}).get("requestBody", {})
        for media in body.get("content", {}).values():
            schema = media["schema"]["properties"][field]
            schema["minLength"] = min_length
            schema["maxLength"] = max_length
            schema["not"] = {"pattern": GUESSABLE}
            schema["description"] = (
                f"{min_length} to {max_length} characters (Unicode code points as sent), "
                "and not guessable: not one or two distinct characters repeated, not one of "
                "the 10,000 most common passwords, a keyboard or counting run, or the email."
            )


GUESSABLE = r"^([\s\S])\1*([\s\S])(\1|\2)*$|^([\s\S])\4*$"
"""A string of at most two distinct characters (the policy refuses those, among others)."""


def _ref(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


_BEARER = "Bearer {$response.body#/access_token}"

# The walk clients take (OpenAPI links; schemathesis' stateful phase follows them):
# register -> sign in -> use the token -> refresh -> revoke.
LINKS: Mapping[tuple[str, str, str], Mapping[str, dict[str, Any]]] = {
    ("/auth/register", "post", "201"): {
        "PasswordGrant": {
            "operationRef": _ref("/auth/token", "post"),
            "requestBody": {
                "grant_type": "password",
                "username": "$request.body#/email",
                "password": "$request.body#/password",
            },
            "description": "Sign in as the new account for tokens.",
        },
    },
    ("/auth/token", "post", "200"): {
        "Me": {
            "operationRef": _ref("/auth/me", "get"),
            "parameters": {"header.Authorization": _BEARER},
            "description": "Use the access token.",
        },
        "RefreshGrant": {
            "operationRef": _ref("/auth/token", "post"),
            "requestBody": {
                "grant_type": "refresh_token",
                "refresh_token": "$response.body#/refresh_token",
            },
            "description": "Rotate the refresh token into a new pair.",
        },
        "Revoke": {
            "operationRef": _ref("/auth/revoke", "post"),
            "requestBody": {"token": "$response.body#/refresh_token"},
            "description": "End the token family (RFC 7009).",
        },
    },
}


def _add_links(document: dict[str, Any]) -> None:
    for (path, method, status), links in LINKS.items():
        response = document["paths"].get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is not None:
            response["links"] = dict(links)


def install_openapi(
    app: FastAPI,
    backends: Iterable[AuthBackend],
    *,
    password_min_length: int,
    password_max_length: int,
) -> None:
    """Make ``app.openapi()`` the exact document of the standalone server.

    Args:
        app: The server app, its routes included.
        backends: The ways in, for the security schemes.
        password_min_length: ``VELVETROPE_PASSWORD_MIN_LENGTH``.
        password_max_length: The policy's maximum.
    """
    backends = tuple(backends)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
        )
        schemes = _schemes(backends, "/auth/token")
        document.setdefault("components", {})["securitySchemes"] = schemes
        signed_in: list[dict[str, list[str]]] = [{name: []} for name in schemes]
        cookies: list[dict[str, list[str]]] = [
            {b.name: []} for b in backends if isinstance(b.transport, CookieTransport)
        ]
        security = {
            "required": signed_in,
            "optional": [{}, *signed_in],
            "browser": cookies,
            "browser-optional": [{}, *cookies],
        }
        every = answers(*_EVERY_OPERATION)
        unsafe = answers(*_UNSAFE_OPERATION)
        hashing = answers(HashingBusy)
        schemas = document["components"].get("schemas", {})
        for operations in document["paths"].values():
            for method, operation in operations.items():
                _merge(operation, every)
                if method in _UNSAFE:
                    _merge(operation, unsafe)
                if _takes_password(operation, schemas):
                    _merge(operation, hashing)
                auth = operation.pop(_AUTH, None)
                if auth is not None:
                    operation["security"] = security[auth]
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        _policy_limits(document, min_length=password_min_length, max_length=password_max_length)
        _add_links(document)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


_AUTH = "x-velvetrope-auth"
SIGNED_IN: dict[str, Any] = {_AUTH: "required"}
"""``openapi_extra`` of an operation that needs a credential (``principal: Current``)."""
OPTIONAL_AUTH: dict[str, Any] = {_AUTH: "optional"}
"""``openapi_extra`` of an operation that uses a credential when one is sent."""
BROWSER: dict[str, Any] = {_AUTH: "browser"}
"""``openapi_extra`` of an operation only the browser credential (a cookie) may call."""
BROWSER_OPTIONAL: dict[str, Any] = {_AUTH: "browser-optional"}
"""``openapi_extra`` of an operation that uses the browser credential when one is sent."""


def sets_cookie(status: int, *, required: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entry: the ``status`` answer sets (or clears) cookies."""
    return {
        status: {"headers": {"Set-Cookie": {**HEADER_DOCS["Set-Cookie"], "required": required}}}
    }
