"""CSRF tokens: signed double-submit values bound to a session (checklist 1.8).

A token is ``<random>.<mac>``: 128 random bits and an HMAC-SHA256, under a secret used
for nothing else (CSRF-03), over an unambiguous, length-prefixed message naming what
the token is bound to and the random part (CSRF-02)::

    len(binding) "!" binding "!" len(random) "!" random

The binding is the credential the browser holds: the session's digest, the refresh
family of a JWT-in-cookie sign-in, or the random pre-session value of a sign-in form.
A token minted for one of them is worthless for any other, and a new sign-in gives a
new binding, so tokens from before it stop working (CSRF-04).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from velvetrope.core.ids import TokenSource

__all__ = [
    "CSRF_SECRET_NAME",
    "CsrfTokens",
    "family_binding",
    "presession_binding",
    "session_binding",
]

CSRF_SECRET_NAME = "csrf-v1"  # noqa: S105 - the name under which the secret is stored
RANDOM_BYTES = 16
SECRET_BYTES = 32
_SHAPE = re.compile(r"[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}")


def session_binding(id_digest: str) -> str:
    """What a session's tokens are bound to: its digest (changes with every new ID)."""
    return f"session:{id_digest}"


def family_binding(family_id: str) -> str:
    """What a JWT-in-cookie sign-in's tokens are bound to: its refresh family."""
    return f"family:{family_id}"


def presession_binding(nonce: str) -> str:
    """What a sign-in form's token is bound to: the random pre-session cookie value."""
    return f"presession:{nonce}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class CsrfTokens:
    """Mints and checks CSRF tokens under one secret shared by every node."""

    def __init__(self, secret: bytes, *, token_bytes: TokenSource = secrets.token_bytes) -> None:
        """Args:
        secret: At least 32 random bytes, dedicated to CSRF tokens.
        token_bytes: The random source (tests inject a deterministic one).

        Raises:
            ValueError: The secret is shorter than 32 bytes.
        """
        if len(secret) < SECRET_BYTES:
            raise ValueError(f"the CSRF secret must be at least {SECRET_BYTES} bytes")
        self._secret = secret
        self._token_bytes = token_bytes

    def _mac(self, binding: str, random_part: str) -> str:
        text = f"{len(binding)}!{binding}!{len(random_part)}!{random_part}"
        # surrogatepass: any str binding has bytes (one with a lone surrogate never
        # verifies anything minted for real text, and no longer raises).
        message = text.encode("utf-8", "surrogatepass")
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    def issue(self, binding: str) -> str:
        """A new token bound to ``binding`` (each call gives a different one)."""
        random_part = _b64(self._token_bytes(RANDOM_BYTES))
        return f"{random_part}.{self._mac(binding, random_part)}"

    def verify(self, binding: str, token: str | None) -> bool:
        """Whether ``token`` was minted by :meth:`issue` for ``binding`` (constant-time)."""
        if token is None or _SHAPE.fullmatch(token) is None:
            return False
        random_part, _, mac = token.partition(".")
        return hmac.compare_digest(mac, self._mac(binding, random_part))
