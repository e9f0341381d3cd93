"""Response shapes: the HTTP contract clients code against (documented at ``/docs``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from velvetrope.core.devices import Device
from velvetrope.stores.records import UserRecord

__all__ = ["ErrorOut", "LoginOut", "MeOut", "SessionOut", "TokenOut", "UserOut", "iso"]


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
    """A successful sign-in; the session itself travels in the cookie.

    ``csrf_token`` goes back in the ``X-CSRF-Token`` header of every unsafe request
    the cookie authenticates; a new sign-in makes the old one worthless.
    """

    user: UserOut
    csrf_token: str


class CsrfOut(BaseModel):
    """A CSRF token: bound to the current sign-in, or to the pre-session cookie if none."""

    csrf_token: str


class CurrentSessionOut(BaseModel):
    """The session behind the current request; ``id`` is its public handle.

    ``expires_at`` is when it ends if unused; ``null`` only for a way in of your own
    whose credential has no known end.
    """

    id: str
    created_at: str
    expires_at: str | None


class MeOut(BaseModel):
    """The signed-in user and their current session."""

    id: str
    email: str
    email_verified: bool = Field(
        description="Whether the owner proved they read mail at this address (a mailed link)"
    )
    session: CurrentSessionOut


class SessionOut(BaseModel):
    """One of the user's sessions (a device); ``id`` is a handle, never the secret ID."""

    id: str
    created_at: str
    last_seen_at: str
    ip: str
    user_agent: str
    current: bool
    bound: bool = Field(
        description="Whether its credential is bound to a key the device holds "
        "(a device-bound session, or DPoP-bound tokens)"
    )

    @classmethod
    def of(cls, device: Device) -> SessionOut:
        return cls(
            id=device.handle,
            created_at=iso(device.created_at),
            last_seen_at=iso(device.last_seen_at),
            ip=device.ip,
            user_agent=device.user_agent,
            current=device.current,
            bound=device.bound,
        )


class TokenOut(BaseModel):
    """A successful token response (RFC 6749 §5.1)."""

    access_token: str
    token_type: str = Field(examples=["Bearer"])
    expires_in: int
    refresh_token: str
