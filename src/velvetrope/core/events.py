"""Security events (SESS-15) as structured log records on ``velvetrope.events``.

Records carry public handles and user ids, never a secret (SESS-14). Each record's
message is ``event=<name> key=value ...`` and the same fields are on the record as
``extra`` attributes (``record.event``, ``record.fields``) for structured handlers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

__all__ = ["EventName", "EventSink", "SecurityEvents"]

EventName = Literal[
    "user_registered",
    "user_disabled",
    "user_enabled",
    "password_changed",
    "password_rehashed",
    "login_succeeded",
    "login_failed",
    "login_throttled",
    "registration_throttled",
    "session_created",
    "session_rotated",
    "session_ended",
    "session_expired",
    "sessions_ended_all",
    "session_evicted",
    "reauthenticated",
    "refresh_family_created",
    "refresh_family_bound",
    "refresh_family_revoked",
    "refresh_reuse_detected",
    "access_token_revoked",
    "signing_key_rotated",
    "dpop_proof_refused",
    "session_bound",
    "session_binding_failed",
    # account lifecycle (velvetrope.core.accounts, velvetrope.core.outbox)
    "password_reset_requested",
    "password_reset",
    "email_verification_requested",
    "email_verified",
    "link_refused",
    "mail_sent",
    "mail_failed",
]

_logger = logging.getLogger("velvetrope.events")

EventSink = Callable[[EventName, Mapping[str, str | int]], None]
"""A listener called with every event, after it is logged, on the emitting task.

Sinks must be quick and must not block (count a metric, put on a queue); a sink that
raises is logged and skipped, and never fails the operation that emitted the event."""


class SecurityEvents:
    """Emits security events; subclass or swap the logger to ship them elsewhere."""

    def __init__(self, logger: logging.Logger = _logger, sinks: Iterable[EventSink] = ()) -> None:
        self._logger = logger
        self._sinks: list[EventSink] = list(sinks)

    def add_sink(self, sink: EventSink) -> None:
        """Call ``sink`` with every later event (metrics, a persisted log, alerts)."""
        self._sinks.append(sink)

    def emit(self, event: EventName, **fields: str | int) -> None:
        """Record ``event`` with ``fields`` (handles and ids only, never secrets)."""
        if self._logger.isEnabledFor(logging.INFO):
            text = " ".join(f"{k}={v}" for k, v in fields.items())
            self._logger.info(
                "event=%s %s", event, text, extra={"event": event, "fields": dict(fields)}
            )
        for sink in self._sinks:
            try:
                sink(event, fields)
            except Exception:
                self._logger.exception("event sink %r failed on event=%s", sink, event)
