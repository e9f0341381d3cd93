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

Anonymous traffic cannot flood the log. An event with no user (a refused DPoP proof on
``/auth/token``, a throttled or failed sign-in on an address, a throttled sign-up) is
*anonymous*: anyone can cause one per request without signing in. Each node writes at
most ``anonymous_budget`` of them one row each per ``anonymous_window`` (defaults: 30 a
minute); past that, they are only counted, and when the window ends one row per event
kind records how many were left out (subject :data:`ANONYMOUS`, ``detail``
``{"suppressed": N, "window_seconds": S}``). So anonymous rows grow by at most
``anonymous_budget + len(KEPT)`` per window per node, whatever the request rate;
retention bounds the total, and every store also keeps no more than the newest
10,000 rows of subject :data:`ANONYMOUS` (:mod:`velvetrope.stores.anonymous_events`),
however many nodes write. Events of a user (``user`` set) are never limited, and
server-wide events (a key rotation) are not anonymous.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from velvetrope.clock import Clock, system_clock
from velvetrope.core.events import EventName
from velvetrope.core.ids import TokenSource
from velvetrope.errors import AuthError
from velvetrope.stores.anonymous_events import ANONYMOUS_SUBJECT
from velvetrope.stores.protocols import SecurityLogStore
from velvetrope.stores.records import SecurityEventRecord

__all__ = ["ANONYMOUS", "KEPT", "SIGN_INS", "SecurityLog", "subjects_of"]

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
        "registration_throttled",
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

ANONYMOUS = ANONYMOUS_SUBJECT
"""The subject of anonymous events that name neither a user nor an address (a refused
DPoP proof, a throttled sign-up), and of the rows that count suppressed ones; every
store keeps at most its newest ``ANONYMOUS_ROWS`` (see
:mod:`velvetrope.stores.anonymous_events`)."""

_SERVER_WIDE: frozenset[EventName] = frozenset({"signing_key_rotated"})
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
        anonymous_budget: int = 30,
        anonymous_window: timedelta = timedelta(minutes=1),
    ) -> None:
        """Args:
        store: Where events are kept.
        retention: How long they are kept.
        now: The clock.
        token_bytes: The random source (event ids).
        max_queue: Events waiting to be written at most; past it new ones are dropped.
        batch: Events written per store call at most.
        anonymous_budget: Anonymous events written one row each per window at most
            (this node); the rest are counted (see the module docstring).
        anonymous_window: The window of ``anonymous_budget``.

        Raises:
            ValueError: ``retention`` or ``anonymous_window`` is not positive, or
                ``anonymous_budget`` is negative.
        """
        if retention <= timedelta(0):
            raise ValueError("the security log's retention must be positive")
        if anonymous_window <= timedelta(0) or anonymous_budget < 0:
            raise ValueError("the anonymous window must be positive and the budget not negative")
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
        self._budget = anonymous_budget
        self._window = anonymous_window
        self._window_ends = self._now()  # the first anonymous event opens a window
        self._written_in_window = 0
        self._suppressed: dict[EventName, int] = {}
        self.suppressed = 0
        """Anonymous events counted rather than written one row each, in total."""

    def sink(self, event: EventName, fields: Mapping[str, str | int]) -> None:
        """The :data:`~velvetrope.core.events.EventSink`: queue ``event`` if it is kept."""
        if event not in KEPT:
            return
        if "user" not in fields and event not in _SERVER_WIDE and not self._admit_anonymous(event):
            return
        self._queue(self._record(event, fields))

    def _admit_anonymous(self, event: EventName) -> bool:
        """Whether this anonymous event gets its own row (within the window's budget);
        if not, it is counted for the window's summary row."""
        self._close_window(self._now())
        if self._written_in_window < self._budget:
            self._written_in_window += 1
            return True
        self._suppressed[event] = self._suppressed.get(event, 0) + 1
        self.suppressed += 1
        return False

    def _close_window(self, now: datetime, *, final: bool = False) -> None:
        """At the end of the window (or ``final``ly), queue one row per kind counting the
        anonymous events left out, and open a new window."""
        if now < self._window_ends and not final:
            return
        for event, count in self._suppressed.items():
            detail = {"suppressed": count, "window_seconds": int(self._window.total_seconds())}
            self._queue(self._record(event, detail))
        self._suppressed = {}
        self._written_in_window = 0
        self._window_ends = now + self._window

    def _queue(self, record: SecurityEventRecord) -> None:
        if len(self._pending) >= self._max_queue:
            if self.dropped == 0 or self.dropped % 1000 == 0:
                _logger.warning(
                    "security log queue full; dropping events (%d so far)", self.dropped
                )
            self.dropped += 1
            return
        self._pending.append(record)
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
        elif event in _SERVER_WIDE:
            subject = ""
        else:
            subject = ANONYMOUS
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
                # Woken by an event, or at the latest once a window (its summary row).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._window.total_seconds()):
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
            self._close_window(self._now(), final=True)  # count what this window left out
            if self._pending:
                await asyncio.shield(self.flush())

    async def flush(self) -> bool:
        """Write every queued event now; whether the queue is empty (``False``: the store
        is down; the events stay queued for the next try)."""
        self._close_window(self._now())
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
