"""Response shapes: the HTTP contract clients code against (documented at ``/docs``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from velvetrope.stores.records import SessionRecord, UserRecord

__all__ = ["ErrorOut", "LoginOut", "MeOut", "SessionOut", "UserOut", "iso"]


def iso(instant: datetime) -> str:
    """RFC 3339 UTC timestamp with a ``Z``, to the second."""
    return instant.isoformat(timespec="seconds").replace("+00:00", "Z")


class ErrorOut(BaseModel):
    """Every error: a machine code and a sentence for humans."""

    error: str = Field(examples=["invalid_credentials"])
    detail: str


class UserOut(BaseModel):
    """An account, as its owner sees it."""

    id: str
    email: str

    @classmethod
    def of(cls, user: UserRecord) -> UserOut:
        return cls(id=user.id, email=user.email)


class LoginOut(BaseModel):
    """A successful sign-in; the session itself travels in the cookie."""

    user: UserOut


class CurrentSessionOut(BaseModel):
    """The session behind the current request; ``id`` is its public handle."""

    id: str
    created_at: str
    expires_at: str


class MeOut(BaseModel):
    """The signed-in user and their current session."""

    id: str
    email: str
    session: CurrentSessionOut


class SessionOut(BaseModel):
    """One of the user's sessions (a device); ``id`` is a handle, never the secret ID."""

    id: str
    created_at: str
    last_seen_at: str
    ip: str
    user_agent: str
    current: bool

    @classmethod
    def of(cls, session: SessionRecord, *, current: bool) -> SessionOut:
        return cls(
            id=session.handle,
            created_at=iso(session.created_at),
            last_seen_at=iso(session.last_seen_at),
            ip=session.ip,
            user_agent=session.user_agent,
            current=current,
        )
