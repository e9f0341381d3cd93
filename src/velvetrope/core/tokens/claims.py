"""Claim validation for the tokens velvetrope issues (JWT-09..JWT-15).

Every rule is explicit, because the JOSE libraries are lenient where it matters:
``exp`` as a string, duplicate members, substring ``iss`` matches (checklist Part 2).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from velvetrope.core.claims import RESERVED_CLAIMS
from velvetrope.errors import InvalidToken

__all__ = [
    "AccessClaims",
    "numeric_date",
    "text_claim",
    "time_window",
    "validate_access_claims",
]

_JTI = re.compile(r"[A-Za-z0-9_-]{22,128}")
_MAX_TEXT = 256
_MAX_DATE = 2**40  # seconds: far beyond any real date, small enough for a float


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """A verified access token's claims.

    Attributes:
        sub: The user id.
        sid: The refresh family (device) the token belongs to.
        jti: The token's unique id (what the denylist is keyed by, TERM-02).
        issued_at: ``iat``.
        expires_at: ``exp``.
        raw: Every claim, as sent.
        jkt: ``cnf.jkt``: the thumbprint of the key the token is bound to (DPoP,
            RFC 9449 section 6.1), or ``None`` for a bearer token.
        email: The user's address when the token was issued (``""`` if it has none).
        claims: The application claims: every claim that is not a reserved name.
    """

    sub: str
    sid: str
    jti: str
    issued_at: datetime
    expires_at: datetime
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    jkt: str | None = None
    email: str = ""
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def numeric_date(claims: Mapping[str, Any], name: str) -> float:
    """Claim ``name`` as a NumericDate: a finite JSON number in range (never a bool or text).

    Raises:
        InvalidToken: It is not one.
    """
    value = claims.get(name)
    if type(value) is int and 0 <= value < _MAX_DATE:  # what velvetrope issues: one test
        return float(value)
    # bool is an int in Python; JSON true is not a NumericDate.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"{name} is not a number")
    # Range first: a huge JSON integer is a valid int that math.isfinite cannot convert.
    if not 0 <= value < _MAX_DATE or not math.isfinite(value):
        raise InvalidToken(f"{name} is out of range")
    return float(value)


def text_claim(claims: Mapping[str, Any], name: str) -> str:
    """Claim ``name`` as non-empty text of at most 256 characters.

    Raises:
        InvalidToken: It is not.
    """
    value = claims.get(name)
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT:
        raise InvalidToken(f"{name} is not a string")
    if value.isascii():  # no lone surrogate can hide in ASCII: the common case, cheaply
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidToken(f"{name} is not valid text") from None
    return value


_JKT = re.compile(r"[A-Za-z0-9_-]{43}")


def time_window(
    claims: Mapping[str, Any], *, now: datetime, leeway: timedelta
) -> tuple[float, float]:
    """``exp`` and ``iat`` of a token that is valid at ``now`` (give or take
    ``leeway``): every token kind velvetrope verifies checks its lifetime here.

    Raises:
        InvalidToken: A date is missing or not a number, or ``now`` is outside the window.
    """
    exp = numeric_date(claims, "exp")
    iat = numeric_date(claims, "iat")
    nbf = numeric_date(claims, "nbf")
    moment = now.timestamp()
    slack = leeway.total_seconds()
    if moment >= exp + slack:
        raise InvalidToken("expired")
    if moment < nbf - slack:
        raise InvalidToken("not yet valid")
    if iat > moment + slack:
        raise InvalidToken("issued in the future")
    return exp, iat


def _confirmation(claims: Mapping[str, Any]) -> str | None:
    """``cnf.jkt`` (a SHA-256 thumbprint: 43 base64url characters), if the token has ``cnf``."""
    if "cnf" not in claims:
        return None
    cnf = claims["cnf"]
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(jkt, str) or not _JKT.fullmatch(jkt):
        raise InvalidToken("bad cnf")
    return jkt


def validate_access_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    audience: str,
    now: datetime,
    leeway: timedelta,
) -> AccessClaims:
    """Check an access token's claims and return them typed.

    Raises:
        InvalidToken: A claim is missing, of the wrong type, or not acceptable now.
    """
    if text_claim(claims, "iss") != issuer:  # exact match, never `in` (JWT-12)
        raise InvalidToken("wrong iss")
    aud = claims.get("aud")
    if aud != audience:  # exact, case-sensitive (JWT-11); or a list that holds it
        if not isinstance(aud, list):
            raise InvalidToken("wrong aud")
        if not aud or not all(isinstance(a, str) for a in aud) or audience not in aud:
            raise InvalidToken("wrong aud")
    exp, iat = time_window(claims, now=now, leeway=leeway)
    jti = claims.get("jti")
    # The pattern admits ASCII only, 22 to 128 characters: all that text_claim checks.
    if not isinstance(jti, str) or not _JTI.fullmatch(jti):
        raise InvalidToken("bad jti")
    text_claim(claims, "client_id")
    email = claims.get("email", "")
    return AccessClaims(
        email=email if isinstance(email, str) else "",
        claims={k: v for k, v in claims.items() if k not in RESERVED_CLAIMS},
        jkt=_confirmation(claims),
        sub=text_claim(claims, "sub"),
        sid=text_claim(claims, "sid"),
        jti=jti,
        issued_at=datetime.fromtimestamp(iat, UTC),
        expires_at=datetime.fromtimestamp(exp, UTC),
        raw=claims,
    )
