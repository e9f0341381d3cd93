"""Who a request is from, once a strategy has verified its credential."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from velvetrope.core.tokens.claims import AccessClaims
from velvetrope.stores.records import SessionRecord

__all__ = ["AuthMethod", "Principal"]

AuthMethod = Literal["session", "bearer", "jwt-cookie"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller.

    Attributes:
        user_id: The account's id.
        method: ``session`` (session cookie), ``bearer`` (``Authorization`` header) or
            ``jwt-cookie`` (access token in a cookie).
        handle: The device: the session's handle or the refresh family's id.
        session: The server-side session, for ``session``.
        token: The verified access-token claims, for ``bearer`` and ``jwt-cookie``.
    """

    user_id: str
    method: AuthMethod
    handle: str
    session: SessionRecord | None = None
    token: AccessClaims | None = None
