"""Security events (SESS-15) as structured log records on ``velvetrope.events``.

Records carry public handles and user ids, never a secret (SESS-14). Each record's
message is ``event=<name> key=value ...`` and the same fields are on the record as
``extra`` attributes (``record.event``, ``record.fields``) for structured handlers.
"""

from __future__ import annotations

import logging
from typing import Literal

__all__ = ["EventName", "SecurityEvents"]

EventName = Literal[
    "user_registered",
    "user_disabled",
    "user_enabled",
    "password_changed",
    "password_rehashed",
    "login_succeeded",
    "login_failed",
    "login_throttled",
    "session_created",
    "session_rotated",
    "session_ended",
    "session_expired",
    "sessions_ended_all",
    "session_evicted",
    "reauthenticated",
    "refresh_family_created",
    "refresh_family_revoked",
    "refresh_reuse_detected",
    "access_token_revoked",
    "signing_key_rotated",
    "dpop_proof_refused",
    "session_bound",
    "session_binding_failed",
]

_logger = logging.getLogger("velvetrope.events")


class SecurityEvents:
    """Emits security events; subclass or swap the logger to ship them elsewhere."""

    def __init__(self, logger: logging.Logger = _logger) -> None:
        self._logger = logger

    def emit(self, event: EventName, **fields: str | int) -> None:
        """Record ``event`` with ``fields`` (handles and ids only, never secrets)."""
        if not self._logger.isEnabledFor(logging.INFO):
            return
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        self._logger.info(
            "event=%s %s", event, text, extra={"event": event, "fields": dict(fields)}
        )
