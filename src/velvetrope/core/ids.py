"""Secret identifiers: generation, validation and the hashes that stores keep.

A session ID (and later a refresh token) is 32 bytes from :mod:`secrets`,
base64url-encoded without padding: 43 characters, 256 bits (SESS-01). Stores only
ever see ``sha256(secret)`` (SESS-03); the raw value lives in the client's cookie.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from collections.abc import Callable

__all__ = [
    "SECRET_BYTES",
    "TokenSource",
    "is_well_formed_secret",
    "new_handle",
    "new_secret",
    "new_user_id",
    "secret_digest",
]

SECRET_BYTES = 32
_SECRET_CHARS = 43  # len(base64url(32 bytes)) without padding
_SECRET_RE = re.compile(rf"[A-Za-z0-9_-]{{{_SECRET_CHARS}}}")

TokenSource = Callable[[int], bytes]
"""Where random bytes come from: ``secrets.token_bytes`` outside of tests."""


def new_secret(token_bytes: TokenSource = secrets.token_bytes) -> str:
    """Return a fresh 256-bit secret as 43 base64url characters."""
    return base64.urlsafe_b64encode(token_bytes(SECRET_BYTES)).rstrip(b"=").decode("ascii")


def is_well_formed_secret(value: str) -> bool:
    """Return whether ``value`` has the exact length and alphabet of a secret.

    Checked before any hashing or store query, so garbage never reaches a store (SESS-08).
    """
    return len(value) == _SECRET_CHARS and _SECRET_RE.fullmatch(value) is not None


def secret_digest(secret: str) -> str:
    """Return the hex SHA-256 of a secret: the only form a store keeps (SESS-03)."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def new_handle(token_bytes: TokenSource = secrets.token_bytes) -> str:
    """Return a public, non-secret handle for a session (safe to show and log)."""
    return token_bytes(12).hex()


def new_user_id(token_bytes: TokenSource = secrets.token_bytes) -> str:
    """Return a random version-4 UUID string for a new user."""
    return str(uuid.UUID(bytes=token_bytes(16), version=4))
