"""The values stores keep. Frozen and slotted; instants are aware UTC datetimes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["FailureRecord", "SessionRecord", "UserRecord"]


@dataclass(frozen=True, slots=True)
class UserRecord:
    """An account.

    Attributes:
        id: Random UUID string; stable, public.
        email: Normalised (lower-case) address; unique.
        password_hash: Argon2id PHC string. Never shown.
        created_at: When the account was made.
        disabled: A disabled account cannot sign in and has no live sessions.
    """

    id: str
    email: str
    password_hash: str = field(repr=False)
    created_at: datetime
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A server-side session as stored: keyed by the digest of its secret ID.

    Attributes:
        id_digest: ``sha256(session_id)`` hex; the raw ID is never stored (SESS-03).
        handle: Public identifier for lists and revocation; not a credential.
        user_id: Owner.
        created_at: When the session began (sign-in).
        last_seen_at: Last recorded activity, written at most once per touch interval.
        expires_at: Absolute end; activity never extends it (TIME-02).
        authenticated_at: When the password was last proven in this session.
        ip: Client address at sign-in (may be empty).
        user_agent: Client ``User-Agent`` at sign-in, truncated.
    """

    id_digest: str = field(repr=False)
    handle: str
    user_id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    authenticated_at: datetime
    ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """Consecutive failed sign-ins counted under one throttle key.

    Attributes:
        count: Failures since the window began (or since the last success).
        first_at: When the first failure in this run happened.
        last_at: When the most recent failure happened.
    """

    count: int
    first_at: datetime
    last_at: datetime
