"""Who a request is from, once a strategy has verified its credential."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from velvetrope.stores.records import SessionRecord

__all__ = ["AuthMethod", "Principal"]

AuthMethod = Literal["session"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller.

    Attributes:
        user_id: The account's id.
        method: Which strategy verified the credential.
        session: The server-side session behind the request.
    """

    user_id: str
    method: AuthMethod
    session: SessionRecord
