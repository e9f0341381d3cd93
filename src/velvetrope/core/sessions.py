"""Server-side sessions: start, resolve on every request, rotate, list and end.

The browser holds a 256-bit random ID; the store holds its SHA-256 (SESS-01, SESS-03).
Both deadlines are enforced here from stored timestamps, not by a cookie or a TTL
(SESS-11): the idle timeout (TIME-01), reset by activity, and the absolute lifetime
(TIME-02), which activity never extends. Activity is written at most once per
``touch_interval``, so the hot path is one point read in the common case.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from velvetrope.clock import Clock, system_clock
from velvetrope.core.events import SecurityEvents
from velvetrope.core.ids import (
    TokenSource,
    is_well_formed_secret,
    new_handle,
    new_secret,
    secret_digest,
)
from velvetrope.errors import SessionExpired, SessionInvalid, SessionNotFound
from velvetrope.stores.protocols import SessionStore
from velvetrope.stores.records import SessionRecord

__all__ = ["IssuedSession", "SessionPolicy", "SessionService"]

_MAX_USER_AGENT = 256
_MAX_IP = 64


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """Session timing and limits. Defaults meet NIST SP 800-63B-4 AAL2 (TIME-03).

    Attributes:
        idle_timeout: A session unused this long ends (≤ 1 h recommended at AAL2).
        absolute_lifetime: A session ends this long after sign-in, however active (≤ 24 h at AAL2).
        touch_interval: Activity is written at most this often.
        max_per_user: Sessions one user may hold; signing in past it ends the oldest (SESS-13).
        reauth_window: How recent a password proof must be for sensitive actions (TIME-05).
        transient_lifetime: The absolute lifetime of a session whose browser was not
            asked to remember it ("remember me" unchecked: a cookie without
            ``Max-Age``); ``None`` is half of ``absolute_lifetime``. Always shorter than
            ``absolute_lifetime``, which is how a session's kind is told later
            (:meth:`persistent`).
    """

    idle_timeout: timedelta = timedelta(minutes=30)
    absolute_lifetime: timedelta = timedelta(hours=12)
    touch_interval: timedelta = timedelta(seconds=60)
    max_per_user: int = 10
    reauth_window: timedelta = timedelta(minutes=10)
    transient_lifetime: timedelta | None = None

    def __post_init__(self) -> None:
        if self.idle_timeout <= timedelta(0) or self.absolute_lifetime <= timedelta(0):
            raise ValueError("session timeouts must be positive")
        if self.idle_timeout > self.absolute_lifetime:
            raise ValueError("the idle timeout cannot be longer than the absolute lifetime")
        if self.absolute_lifetime > timedelta(days=30):
            raise ValueError("the absolute session lifetime cannot exceed 30 days (NIST AAL1)")
        if not timedelta(0) <= self.touch_interval < self.idle_timeout:
            raise ValueError("the touch interval must be shorter than the idle timeout")
        if self.max_per_user < 1:
            raise ValueError("max_per_user must be at least 1")
        transient = self.transient_lifetime
        if transient is not None and not timedelta(0) < transient < self.absolute_lifetime:
            raise ValueError(
                "the lifetime of sessions not remembered must be positive and shorter than "
                "the absolute session lifetime"
            )

    @property
    def short_lifetime(self) -> timedelta:
        """The absolute lifetime of a session not remembered by its browser."""
        return self.transient_lifetime or self.absolute_lifetime / 2

    def persistent(self, session: SessionRecord) -> bool:
        """Whether ``session`` was started as remembered (a persistent cookie): its
        lifetime, fixed at sign-in and kept by every rotation, is longer than
        :attr:`short_lifetime`."""
        return session.expires_at - session.authenticated_at > self.short_lifetime


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A session just created: the secret goes to the client once, then is forgotten.

    Attributes:
        secret: The session ID for the cookie. Never stored, never logged.
        record: What the store keeps.
    """

    secret: str = field(repr=False)
    record: SessionRecord


class SessionService:
    """Session lifecycle on top of a :class:`SessionStore`."""

    def __init__(
        self,
        store: SessionStore,
        policy: SessionPolicy | None = None,
        *,
        events: SecurityEvents | None = None,
        now: Clock = system_clock,
        token_bytes: TokenSource = secrets.token_bytes,
    ) -> None:
        self._store = store
        self.policy = policy or SessionPolicy()
        self._events = events or SecurityEvents()
        self._now = now
        self._token_bytes = token_bytes

    def _new(
        self,
        user_id: str,
        *,
        ip: str,
        user_agent: str,
        email: str = "",
        claims: Mapping[str, Any] | None = None,
        persistent: bool = True,
    ) -> IssuedSession:
        now = self._now()
        policy = self.policy
        lifetime = policy.absolute_lifetime if persistent else policy.short_lifetime
        secret = new_secret(self._token_bytes)
        record = SessionRecord(
            id_digest=secret_digest(secret),
            handle=new_handle(self._token_bytes),
            user_id=user_id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
            authenticated_at=now,
            ip=ip[:_MAX_IP],
            user_agent=user_agent[:_MAX_USER_AGENT],
            email=email,
            claims=dict(claims or {}),
        )
        return IssuedSession(secret, record)

    async def start(
        self,
        user_id: str,
        *,
        ip: str = "",
        user_agent: str = "",
        replacing: str | None = None,
        email: str = "",
        claims: Mapping[str, Any] | None = None,
        persistent: bool = True,
    ) -> IssuedSession:
        """Begin a session after the user proved who they are, holding the user's
        ``email`` and application ``claims`` (so requests need no user lookup).
        ``persistent=False`` gives it :attr:`SessionPolicy.short_lifetime`.

        Always a new ID (SESS-06): a session ID the client already held (``replacing``)
        is destroyed, whoever it belonged to, so a planted ID can never become a
        signed-in one (fixation). Past ``max_per_user`` the oldest sessions end.
        """
        if replacing is not None and is_well_formed_secret(replacing):
            await self._store.delete(secret_digest(replacing))
        issued = self._new(
            user_id,
            ip=ip,
            user_agent=user_agent,
            email=email,
            claims=claims,
            persistent=persistent,
        )
        await self._store.add(issued.record)
        self._events.emit("session_created", user=user_id, session=issued.record.handle)
        await self._enforce_limit(user_id, keep=issued.record.id_digest)
        return issued

    async def _enforce_limit(self, user_id: str, *, keep: str) -> None:
        live = []
        for session in await self._store.list_for_user(user_id):
            if self._is_live(session):
                live.append(session)
            else:  # dead sessions never count against the limit
                await self._store.delete(session.id_digest)
        excess = len(live) - self.policy.max_per_user
        for old in [s for s in live if s.id_digest != keep][: max(excess, 0)]:
            if await self._store.delete(old.id_digest):
                self._events.emit("session_evicted", user=user_id, session=old.handle)

    def _is_live(self, session: SessionRecord) -> bool:
        now = self._now()
        return now < session.expires_at and now < session.last_seen_at + self.policy.idle_timeout

    async def resolve(self, secret: str) -> SessionRecord:
        """Return the live session for a presented ID; the check run on every request.

        Raises:
            SessionInvalid: Malformed, unknown or ended ID. Nothing is created (SESS-05).
            SessionExpired: Idle timeout or absolute lifetime passed; the session is deleted.
        """
        if not is_well_formed_secret(secret):
            raise SessionInvalid
        digest = secret_digest(secret)
        session = await self._store.get(digest)
        if session is None:
            raise SessionInvalid
        now = self._now()
        if now >= session.expires_at or now >= session.last_seen_at + self.policy.idle_timeout:
            await self._store.delete(digest)
            self._events.emit("session_expired", user=session.user_id, session=session.handle)
            raise SessionExpired
        if now - session.last_seen_at >= self.policy.touch_interval:
            if not await self._store.touch(digest, now):
                raise SessionInvalid  # ended by another request meanwhile (SESS-09)
            session = dataclasses.replace(session, last_seen_at=now)
        return session

    def deadline(self, session: SessionRecord) -> datetime:
        """Return when ``session`` ends if unused from now: the earlier of both deadlines."""
        return min(session.expires_at, session.last_seen_at + self.policy.idle_timeout)

    def is_recently_authenticated(self, session: SessionRecord) -> bool:
        """Whether the password was proven within ``reauth_window`` (TIME-05)."""
        return self._now() - session.authenticated_at < self.policy.reauth_window

    async def reauthenticated(
        self, secret: str, session: SessionRecord, *, claims: Mapping[str, Any] | None = None
    ) -> IssuedSession:
        """Replace ``session`` with a fresh ID after the password was proven again.

        Both deadlines restart (TIME-02; a session not remembered keeps its shorter
        lifetime) and the old ID stops working at once (SESS-06). The application
        ``claims`` are replaced when given, else kept.

        Raises:
            SessionInvalid: The session ended meanwhile; exactly one of several
                concurrent rotations wins (SESS-10).
        """
        issued = self._new(
            session.user_id,
            ip=session.ip,
            user_agent=session.user_agent,
            email=session.email,
            claims=session.claims if claims is None else claims,
            persistent=self.policy.persistent(session),
        )
        # The device stays bound across rotation: the key lives in the browser, not the ID.
        record = dataclasses.replace(
            issued.record, created_at=session.created_at, device_key=session.device_key
        )
        if not await self._store.rotate(secret_digest(secret), record):
            raise SessionInvalid
        self._events.emit(
            "session_rotated", user=session.user_id, session=record.handle, previous=session.handle
        )
        return IssuedSession(issued.secret, record)

    async def bind(self, secret: str, device_key: str) -> bool:
        """Bind the session with this ID to a device's public key (JWK JSON); return
        ``False`` if it is gone (or the ID is malformed)."""
        if not is_well_formed_secret(secret):
            return False
        return await self._store.bind(secret_digest(secret), device_key)

    async def end(self, secret: str) -> SessionRecord | None:
        """End the session with this ID, if there is one; return what was ended."""
        if not is_well_formed_secret(secret):
            return None
        digest = secret_digest(secret)
        session = await self._store.get(digest)
        if session is None or not await self._store.delete(digest):
            return None
        self._events.emit("session_ended", user=session.user_id, session=session.handle)
        return session

    async def end_by_handle(self, user_id: str, handle: str) -> None:
        """End one of the user's sessions by its public handle.

        Raises:
            SessionNotFound: The user has no session with that handle.
        """
        if not await self._store.delete_by_handle(user_id, handle):
            raise SessionNotFound
        self._events.emit("session_ended", user=user_id, session=handle)

    async def end_all(self, user_id: str, *, keep: SessionRecord | None = None) -> int:
        """End every session of the user (except ``keep``); return how many ended."""
        count = await self._store.delete_for_user(
            user_id, keep=None if keep is None else keep.id_digest
        )
        self._events.emit("sessions_ended_all", user=user_id, count=count)
        return count

    async def list(self, user_id: str) -> Sequence[SessionRecord]:
        """Return the user's live sessions, oldest first."""
        return [s for s in await self._store.list_for_user(user_id) if self._is_live(s)]

    async def purge_expired(self) -> int:
        """Delete sessions past their absolute lifetime; for a periodic job."""
        return await self._store.purge_expired(self._now())
