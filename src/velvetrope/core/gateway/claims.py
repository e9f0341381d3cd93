"""The internal JWT's claims, validated exactly (HYB-01..HYB-04).

One function checks what the edge mints and what a service behind it accepts, so the
two can never disagree: ``iss`` and ``aud`` exact, ``sub``, ``sid`` (the session's
public handle) and ``jti`` as text, ``iat``/``nbf``/``exp`` as NumericDates within the
leeway, and a lifetime no longer than the edge ever mints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from velvetrope.core.tokens.claims import text_claim, time_window
from velvetrope.errors import InvalidToken

__all__ = [
    "INTERNAL_TYP",
    "MAX_INTERNAL_TTL",
    "REGISTERED_CLAIMS",
    "InternalClaims",
    "validate_internal_claims",
]

INTERNAL_TYP = "vr-internal+jwt"
"""The ``typ`` of internal tokens: never ``at+jwt``, so neither kind passes for the other."""

MAX_INTERNAL_TTL = timedelta(minutes=10)
"""No internal token may live longer than this, whatever it says (a forged long one is refused)."""

REGISTERED_CLAIMS = frozenset({"iss", "aud", "sub", "sid", "jti", "iat", "nbf", "exp"})
"""Claims the edge sets; application claims never override them."""

_JTI = re.compile(r"[A-Za-z0-9_-]{22,128}")


@dataclass(frozen=True, slots=True)
class InternalClaims:
    """A verified internal token's claims.

    Attributes:
        sub: The user id.
        sid: The edge session's public handle (never the session ID).
        aud: The one audience (service) the token is for.
        jti: The token's unique id.
        issued_at: ``iat`` (to the millisecond: revocation cut-offs compare it).
        expires_at: ``exp``.
        raw: Every claim, application claims included.
    """

    sub: str
    sid: str
    aud: str
    jti: str
    issued_at: datetime
    expires_at: datetime
    raw: Mapping[str, Any] = field(repr=False, compare=False)


def validate_internal_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    audience: str,
    now: datetime,
    leeway: timedelta,
) -> InternalClaims:
    """Check an internal token's claims and return them typed.

    Raises:
        InvalidToken: A claim is missing, of the wrong type, for someone else, or not
            acceptable now.
    """
    if text_claim(claims, "iss") != issuer:  # exact, never a prefix (JWT-12)
        raise InvalidToken("wrong iss")
    if claims.get("aud") != audience:  # one audience, exact (HYB-02)
        raise InvalidToken("wrong aud")
    exp, iat = time_window(claims, now=now, leeway=leeway)
    if exp - iat > MAX_INTERNAL_TTL.total_seconds() or exp < iat:
        raise InvalidToken("lifetime too long")
    jti = text_claim(claims, "jti")
    if not _JTI.fullmatch(jti):
        raise InvalidToken("bad jti")
    return InternalClaims(
        sub=text_claim(claims, "sub"),
        sid=text_claim(claims, "sid"),
        aud=audience,
        jti=jti,
        issued_at=datetime.fromtimestamp(iat, UTC),
        expires_at=datetime.fromtimestamp(exp, UTC),
        raw=claims,
    )
