"""The values stores keep. Frozen and slotted; instants are aware UTC datetimes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "FailureRecord",
    "KeyRecord",
    "RefreshFamilyRecord",
    "RevocationRecord",
    "SchemaVersion",
    "SessionCacheStatus",
    "SessionRecord",
    "UserRecord",
    "dump_claims",
    "load_claims",
]


@dataclass(frozen=True, slots=True)
class UserRecord:
    """An account.

    Attributes:
        id: Random UUID string; stable, public.
        email: Normalised (lower-case) address; unique.
        password_hash: Argon2id PHC string. Never shown.
        created_at: When the account was made.
        disabled: A disabled account cannot sign in and has no live sessions.
        email_verified_at: When the owner proved they read mail at ``email``, if ever.
    """

    id: str
    email: str
    password_hash: str = field(repr=False)
    created_at: datetime
    disabled: bool = False
    email_verified_at: datetime | None = None


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
        email: The user's address at sign-in, so a request needs no user lookup.
        claims: Application claims computed at sign-in (JSON values; may be empty).
        device_key: The public key (JWK JSON) the device bound the session to
            (device-bound sessions), or ``None`` while unbound.
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
    email: str = ""
    claims: Mapping[str, Any] = field(default_factory=dict)
    device_key: str | None = None


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


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A signing key as stored.

    Attributes:
        kid: RFC 7638 thumbprint of the key.
        purpose: What the key signs (``access``; later ``internal``); keys never cross purposes.
        alg: The one algorithm this key is used with (JWT-02).
        private_jwk: The private key as JWK JSON. Never shown, never logged.
        created_at: When the key was made; the newest unretired key signs.
        retired_at: When it stopped signing (``None`` while it signs).
        expires_at: When it stops verifying (``None`` while it signs).
    """

    kid: str
    purpose: str
    alg: str
    private_jwk: str = field(repr=False)
    created_at: datetime
    retired_at: datetime | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RefreshFamilyRecord:
    """A refresh-token family: one sign-in of one device, rotated on every use.

    Attributes:
        id: Public handle (the ``sid`` claim of its access tokens, and the device id).
        user_id: Owner.
        created_at: The sign-in.
        last_used_at: The last rotation.
        expires_at: Absolute end, never extended (RT-06).
        authenticated_at: When the password was last proven for this family.
        generation: How many rotations so far; the current token is this generation.
        rotated_at: When the current generation was issued.
        revoked_at: When the family was revoked, or ``None``.
        ip: Client address at sign-in.
        user_agent: Client ``User-Agent`` at sign-in.
        jkt: The thumbprint of the key the family's tokens are bound to (DPoP), or
            ``None`` for plain bearer tokens.
    """

    id: str
    user_id: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    authenticated_at: datetime
    generation: int
    rotated_at: datetime
    revoked_at: datetime | None = None
    ip: str = ""
    user_agent: str = ""
    jkt: str | None = None


@dataclass(frozen=True, slots=True)
class RevocationRecord:
    """One entry of the revocation feed every node replays.

    Attributes:
        kind: ``jti`` (one access token), ``family`` (every token of a refresh family)
            or ``user`` (every token of the user issued before ``at``).
        value: The jti, family id or user id.
        at: When it was revoked (for ``user``: the cut-off).
        expires_at: When the entry can be forgotten (no token it covers is alive).
    """

    kind: str
    value: str
    at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionCacheStatus:
    """What a node's session cache is doing, for ``/ready`` and operators.

    Attributes:
        enabled: The cache is configured (a positive ``ttl``).
        push_connected: The invalidation subscription is up, so the cache is in use;
            while it is not, every lookup goes to the store.
        max_staleness: The longest an entry is served without a fresh read.
        entries: Sessions cached now.
        hits: Lookups answered from the cache since the start.
        misses: Lookups that went to the store (misses and bypasses) since the start.
        max_entries: The most sessions it holds.
    """

    enabled: bool
    push_connected: bool
    max_staleness: timedelta
    entries: int
    hits: int
    misses: int
    max_entries: int = 10_000


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """A database's schema version before and after migrating it.

    Attributes:
        before: The version found (0 for a new database).
        after: The version now.
    """

    before: int
    after: int


def dump_claims(claims: Mapping[str, Any]) -> str:
    """Application claims as the compact JSON text backends store."""
    return json.dumps(claims, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def load_claims(text: str | None) -> dict[str, Any]:
    """Claims stored by :func:`dump_claims` (``{}`` for none)."""
    if not text:
        return {}
    claims: dict[str, Any] = json.loads(text)
    return claims
