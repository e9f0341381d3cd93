"""Application claims: what your app wants to know about a user on every request.

A claims hook (``Hooks.claims``) returns JSON values (roles, scopes, a department, any
object) for a user. They are computed when a credential is issued (sign-in, re-auth,
a new password, every refresh of an access token) and travel with it: in the session
record (``SessionRecord.claims``) and in the access token, next to its registered
claims. ``Principal.claims`` then gives them on every request with no lookup.

They are checked before anything is issued: a JSON object with string keys, no name
velvetrope or RFC 9068 use (:data:`RESERVED_CLAIMS`), and at most ``max_bytes`` of
compact JSON (tokens travel in every request header; 2 KiB by default). A hook that
fails or returns claims that break a rule fails the sign-in cleanly (nothing is
issued) with :class:`~velvetrope.errors.InvalidClaims`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from velvetrope.errors import InvalidClaims
from velvetrope.stores.records import UserRecord

__all__ = [
    "DEFAULT_MAX_CLAIMS_BYTES",
    "MAX_CLAIMS_BYTES",
    "RESERVED_CLAIMS",
    "ClaimsHook",
    "check_claims",
    "compute_claims",
]

_logger = logging.getLogger("velvetrope.hooks")

DEFAULT_MAX_CLAIMS_BYTES = 2048
MAX_CLAIMS_BYTES = 4096
"""The largest cap allowed: claims ride in every request's ``Authorization`` header or
cookie, and servers commonly refuse headers past 8 KiB."""

RESERVED_CLAIMS = frozenset(
    {
        # RFC 7519 registered claims
        "iss", "sub", "aud", "exp", "nbf", "iat", "jti",
        # RFC 9068 / RFC 8693 / RFC 9449 claims velvetrope sets or may set
        "client_id", "sid", "cnf", "act", "may_act", "auth_time", "acr", "amr",
        # velvetrope's own
        "email", "typ", "token_use", "velvetrope",
    }
)  # fmt: skip
"""Names an application claim may not use: velvetrope or the RFCs give them a meaning."""

ClaimsHook = Callable[[UserRecord], Awaitable[Mapping[str, Any]]]
"""``async def claims(user) -> {"roles": [...], ...}``: the application claims of ``user``."""


def _finite(value: Any) -> bool:
    """Whether ``value`` is plain JSON (no NaN or infinity, string keys only)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _finite(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return value is None or isinstance(value, str | int | bool)


def check_claims(claims: Mapping[str, Any], *, max_bytes: int) -> dict[str, Any]:
    """``claims`` as a plain dict, once they pass every rule.

    Raises:
        InvalidClaims: Not a mapping of JSON values with string keys, a reserved name,
            or larger than ``max_bytes`` as compact JSON.
    """
    if not isinstance(claims, Mapping):
        raise InvalidClaims(f"the claims hook must return a mapping, not {type(claims).__name__}")
    found = dict(claims)
    reserved = sorted(k for k in found if isinstance(k, str) and k in RESERVED_CLAIMS)
    if reserved:
        raise InvalidClaims(
            f"application claims may not use the reserved name(s) {', '.join(reserved)}"
        )
    if not _finite(found):
        raise InvalidClaims(
            "application claims must be JSON: string keys, and strings, numbers, booleans, "
            "null, lists and objects as values"
        )
    size = len(json.dumps(found, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > max_bytes:
        raise InvalidClaims(
            f"application claims are {size} bytes as JSON, over the {max_bytes}-byte cap "
            "(VELVETROPE_MAX_CLAIMS_BYTES); put large data in your database and a key here"
        )
    return found


async def compute_claims(
    hook: ClaimsHook | None, user: UserRecord, *, max_bytes: int
) -> dict[str, Any]:
    """Run ``hook`` for ``user`` and check what it returns (``{}`` without a hook).

    Raises:
        InvalidClaims: The hook raised, or its claims break a rule (logged either way).
    """
    if hook is None:
        return {}
    try:
        claims = await hook(user)
    except Exception as exc:  # the app's code: any failure stops the sign-in
        _logger.exception("the claims hook failed for user %s", user.id)
        raise InvalidClaims(f"the claims hook failed: {type(exc).__name__}") from exc
    try:
        return check_claims(claims, max_bytes=max_bytes)
    except InvalidClaims as exc:
        _logger.error("claims refused for user %s: %s", user.id, exc.detail)
        raise
