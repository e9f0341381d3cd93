"""The persisted security log: security events kept in the store, for a bounded time.

:class:`SecurityLog` listens to the one event stream (``SecurityEvents.add_sink``).
Sinks are synchronous and run on the request's task, so the sink only turns the event
into a :class:`~velvetrope.stores.records.SecurityEventRecord` and appends it to a
bounded in-memory queue; :meth:`SecurityLog.run` writes the queue in batches in the
background. A request never waits for the log and never fails because of it: when
the store is down the batch stays queued and is retried; when the queue is full new
events are dropped, counted (:attr:`SecurityLog.dropped`) and logged once per burst.

What is kept: sign-ins and failures, throttling, re-authentication, sign-outs and
revocations, refresh-token reuse, DPoP and device-binding proof failures, account
changes and admin actions (disable, enable, key rotation). Routine events that repeat
a kept one (a session created by a sign-in, a rotation) are not. Only what events
carry is kept: user ids and public handles, a keyed hash of an email address for a
failed sign-in, the client address and user agent; never a secret.

Retention: :meth:`purge` (run by the maintenance loop, see ``AuthService.maintain``)
deletes what is older than ``retention``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import timedelta

from velvetrope.clock import Clock, system_clock
from velvetrope.core.events import EventName
from velvetrope.core.ids import TokenSource
from velvetrope.errors import AuthError
from velvetrope.stores.protocols import SecurityLogStore
from velvetrope.stores.records import SecurityEventRecord

__all__ = ["KEPT", "SIGN_INS", "SecurityLog", "subjects_of"]

_logger = logging.getLogger("velvetrope.security_log")

KEPT: frozenset[EventName] = frozenset(
    {
        "user_registered",
        "user_disabled",
        "user_enabled",
        "password_changed",
        "login_succeeded",
        "login_failed",
        "login_throttled",
        "reauthenticated",
        "session_ended",
        "sessions_ended_all",
        "session_evicted",
        "refresh_family_revoked",
        "refresh_reuse_detected",
        "access_token_revoked",
        "signing_key_rotated",
        "dpop_proof_refused",
        "refresh_family_bound",
        "session_bound",
        "session_binding_failed",
    }
)
"""The events the log keeps."""

SIGN_INS: tuple[EventName, ...] = ("login_succeeded",)
"""What the account page lists as the user's recent sign-ins."""

_HANDLES = ("session", "family", "kid")
_USER_AGENT_MAX = 256
_RETRY = 1.0  # seconds between writes while the store is down


def subjects_of(user_id: str, email_handle: str) -> list[str]:
    """The subjects of one account's events: its id, and its address's handle (failed
    sign-ins are recorded before the account is known)."""
    return [user_id, f"email:{email_handle}"]


class SecurityLog:
    """Queues security events and writes them to the store in the background."""

    def __init__(
        self,
        store: SecurityLogStore,
        *,
        retention: timedelta = timedelta(days=90),
        now: Clock = system_clock,
        token_bytes: TokenSource = secrets.token_bytes,
        max_queue: int = 10_000,
        batch: int = 200,
    ) -> None:
        """Args:
        store: Where events are kept.
        retention: How long they are kept.
        now: The clock.
        token_bytes: The random source (event ids).
        max_queue: Events waiting to be written at most; past it new ones are dropped.
        batch: Events written per store call at most.
        """
        if retention <= timedelta(0):
            raise ValueError("the security log's retention must be positive")
        self._store = store
        self.retention = retention
        self._now = now
        self._token_bytes = token_bytes
        self._max_queue = max_queue
        self._batch = batch
        self._pending: deque[SecurityEventRecord] = deque()
        # Made by run(), on the loop that serves: the service may be started again on
        # another loop (a second TestClient), where an old Event would not work.
        self._wake: asyncio.Event | None = None
        self.dropped = 0

    def sink(self, event: EventName, fields: Mapping[str, str | int]) -> None:
        """The :data:`~velvetrope.core.events.EventSink`: queue ``event`` if it is kept."""
        if event not in KEPT:
            return
        if len(self._pending) >= self._max_queue:
            if self.dropped == 0 or self.dropped % 1000 == 0:
                _logger.warning(
                    "security log queue full; dropping events (%d so far)", self.dropped
                )
            self.dropped += 1
            return
        self._pending.append(self._record(event, fields))
        if self._wake is not None:
            self._wake.set()

    def _record(self, event: EventName, fields: Mapping[str, str | int]) -> SecurityEventRecord:
        rest = dict(fields)
        user = rest.pop("user", None)
        email = rest.pop("email", None)
        if user is not None:
            subject = str(user)
        elif email is not None:
            subject = f"email:{email}"
        else:
            subject = ""
        handle = next((str(rest.pop(name)) for name in _HANDLES if name in rest), "")
        ip = str(rest.pop("ip", ""))
        user_agent = str(rest.pop("user_agent", ""))[:_USER_AGENT_MAX]
        return SecurityEventRecord(
            id=base64.b32encode(self._token_bytes(10)).decode("ascii").lower(),
            at=self._now(),
            event=event,
            subject=subject,
            ip=ip,
            user_agent=user_agent,
            handle=handle,
            detail=json.dumps(rest, separators=(",", ":"), sort_keys=True),
        )

    @property
    def queued(self) -> int:
        """Events waiting to be written."""
        return len(self._pending)

    async def run(self) -> None:
        """Write queued events as they come, until cancelled (then flush what is left)."""
        wake = self._wake = asyncio.Event()
        wake.set()  # what was queued before the loop started
        me = asyncio.current_task()
        try:
            while True:
                await wake.wait()
                wake.clear()
                written = await self.flush()
                if me is not None and me.cancelling():
                    # A store client may swallow a cancellation that lands mid-command
                    # (redis-py's timeouts on 3.11); honour it, or shutdown waits forever.
                    raise asyncio.CancelledError
                if not written:  # the store is down: try again shortly
                    await asyncio.sleep(_RETRY)
                    wake.set()
        finally:
            self._wake = None
            if self._pending:
                await asyncio.shield(self.flush())

    async def flush(self) -> bool:
        """Write every queued event now; whether the queue is empty (``False``: the store
        is down; the events stay queued for the next try)."""
        while self._pending:
            batch = [self._pending.popleft() for _ in range(min(self._batch, len(self._pending)))]
            try:
                await self._store.add(batch)
            except AuthError as exc:
                self._pending.extendleft(reversed(batch))
                _logger.warning("security log not written (will retry): %s", exc.detail)
                return False
        return True

    async def purge(self) -> int:
        """Delete the events older than the retention; return how many."""
        return await self._store.purge_before(self._now() - self.retention)

    async def recent(
        self, subjects: Sequence[str], *, limit: int = 50, events: Sequence[str] = ()
    ) -> Sequence[SecurityEventRecord]:
        """The newest ``limit`` events of ``subjects`` (of ``events`` only, if given),
        newest first; what is still queued is written first, so nothing just emitted is
        missing.

        Raises:
            StoreUnavailable: The store did not answer.
        """
        await self.flush()
        return await self._store.for_subjects(subjects, limit=limit, events=events)
