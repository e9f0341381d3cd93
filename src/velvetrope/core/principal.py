"""Who a request is from, once a strategy has verified its credential."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from velvetrope.core.tokens.claims import AccessClaims
from velvetrope.stores.records import SessionRecord

__all__ = ["Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller.

    Attributes:
        user_id: The account's id.
        method: The name of the way in that verified the credential: ``session``
            (session cookie), ``bearer`` (``Authorization`` header), ``jwt-cookie``
            (access token in a cookie), or the name of a backend of your own.
        handle: The device: the session's handle or the refresh family's id.
        session: The server-side session, when a session verified the request.
        token: The verified access-token claims, when an access token did.
        email: The account's address, as the credential carries it (no lookup); empty
            for a way in of your own that does not set it.
        claims: The application claims the credential carries (see
            :mod:`velvetrope.core.claims`); empty without a claims hook.
    """

    user_id: str
    method: str
    handle: str
    session: SessionRecord | None = None
    token: AccessClaims | None = None
    email: str = ""
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False)
