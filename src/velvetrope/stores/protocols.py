"""The store contracts. Every backend implements these and passes one contract suite.

Rules every backend follows (tested in ``tests/stores/test_contract.py``):

* Stores hold digests, never raw secrets; they never generate or interpret them.
* Expiry is decided by core code from stored timestamps (SESS-11). A backend may also
  drop expired data on its own (TTL, purge), but never keeps data *alive* longer.
* ``touch`` and every other update never re-create a row that was deleted (SESS-09).
* Writes that consume or replace a record (``rotate``) are atomic: with concurrent
  callers exactly one succeeds (SESS-10).
* A backend that cannot reach its server raises :class:`~velvetrope.errors.StoreUnavailable`,
  never returns "not found" in its place (fail closed, TERM-05).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from velvetrope.stores.records import (
    FailureRecord,
    KeyRecord,
    RefreshFamilyRecord,
    RevocationRecord,
    SchemaVersion,
    SecurityEventRecord,
    SessionCacheStatus,
    SessionRecord,
    UserRecord,
)

__all__ = [
    "EpochReader",
    "EpochedRevocationStore",
    "FastStores",
    "KeyStore",
    "Notifier",
    "OneTimeStore",
    "RefreshStore",
    "RevocationStore",
    "SecurityLogStore",
    "SessionStore",
    "Stores",
    "ThrottleStore",
    "UserStore",
]


class UserStore(Protocol):
    """Accounts, unique by normalised email."""

    async def add(self, user: UserRecord) -> None:
        """Insert ``user``.

        Raises:
            EmailTaken: The email is already registered.
        """

    async def get(self, user_id: str) -> UserRecord | None:
        """Return the user with this id, or ``None``."""

    async def get_by_email(self, email: str) -> UserRecord | None:
        """Return the user with this normalised email, or ``None``."""

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        """Replace the stored password hash (rehash or password change)."""

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        """Enable or disable the account."""

    async def set_email_verified(self, user_id: str, at: datetime | None) -> None:
        """Record when the address was verified (``None``: not verified, after a change)."""

    async def list(self, *, limit: int = 100, offset: int = 0) -> Sequence[UserRecord]:
        """Return users ordered by creation time."""


class SessionStore(Protocol):
    """Server-side sessions keyed by the digest of the session ID."""

    async def add(self, session: SessionRecord) -> None:
        """Insert a new session."""

    async def get(self, id_digest: str) -> SessionRecord | None:
        """Return the session with this digest, or ``None``. Never creates one (SESS-05)."""

    async def touch(self, id_digest: str, last_seen_at: datetime) -> bool:
        """Record activity; return ``False`` (and write nothing) if the session is gone."""

    async def bind(self, id_digest: str, device_key: str) -> bool:
        """Bind the session to a device's public key (JWK JSON); return ``False`` (and
        write nothing) if the session is gone. Like ``touch``, never re-creates it."""

    async def rotate(self, old_digest: str, new: SessionRecord) -> bool:
        """Atomically replace session ``old_digest`` with ``new``.

        Returns ``False`` and writes nothing if ``old_digest`` no longer exists, so of
        several concurrent rotations of one session exactly one succeeds.
        """

    async def delete(self, id_digest: str) -> bool:
        """Delete one session; return whether it existed."""

    async def delete_by_handle(self, user_id: str, handle: str) -> bool:
        """Delete the user's session with this handle; return whether it existed."""

    async def list_for_user(self, user_id: str) -> Sequence[SessionRecord]:
        """Return the user's sessions, oldest first (expired ones may be included)."""

    async def delete_for_user(self, user_id: str, *, keep: str | None = None) -> int:
        """Delete every session of the user except digest ``keep``; return the count."""

    async def purge_expired(self, now: datetime) -> int:
        """Delete sessions whose absolute expiry is past; return the count."""


class ThrottleStore(Protocol):
    """Counters of failed sign-ins, for login throttling (PW-07)."""

    async def get(self, key: str) -> FailureRecord | None:
        """Return the failure record for ``key``, or ``None``."""

    async def record_failure(
        self, key: str, now: datetime, *, window_start: datetime
    ) -> FailureRecord:
        """Count one failure at ``now`` and return the new record.

        A record whose ``first_at`` is before ``window_start`` is stale and restarts at 1.
        """

    async def count_if(
        self, key: str, now: datetime, *, window_start: datetime, limit: int
    ) -> FailureRecord | None:
        """Count one failure at ``now`` only while fewer than ``limit`` are counted.

        The compare and the count are one atomic step in the store, so nodes racing
        on one key never admit more than ``limit`` between them. A stale record (as
        for :meth:`record_failure`) restarts at 1. Returns the new record, or ``None``
        (nothing written) when ``limit`` were already counted; a ``limit`` below 1
        admits nothing.
        """

    async def release(self, key: str, *, first_at: datetime) -> bool:
        """Take back one count under ``key`` if its run still began at ``first_at``.

        For an attempt admitted by :meth:`count_if` that turned out not to be a
        failure. A run restarted meanwhile is left alone; the count never goes below
        zero. Returns whether a count was taken back.
        """

    async def clear(self, key: str) -> None:
        """Forget the failures under ``key`` (after a successful sign-in)."""

    async def purge_before(self, cutoff: datetime) -> int:
        """Forget counters whose last failure is older than ``cutoff``; return how many."""


class KeyStore(Protocol):
    """Signing keys and named server secrets, shared by every node."""

    async def list_keys(self, purpose: str) -> Sequence[KeyRecord]:
        """Return the purpose's keys, newest first (retired ones included until deleted)."""

    async def add_key(self, key: KeyRecord) -> None:
        """Store a new key."""

    async def retire_keys(self, purpose: str, *, keep: str, at: datetime, until: datetime) -> int:
        """Retire every signing key of ``purpose`` older than ``keep`` (by creation time,
        then kid): stop signing ``at``, stop verifying ``until``. Returns how many.

        Never a newer key: two processes rotating at once must not retire each other's
        new key and leave the ring without a signer.
        """

    async def delete_expired_keys(self, now: datetime) -> int:
        """Delete keys whose verification period ended; return the count."""

    async def secret(self, name: str, candidate: str) -> str:
        """Return the secret called ``name``, storing ``candidate`` first if there is none.

        Atomic: of concurrent first callers, all get the same stored value.
        """


class RefreshStore(Protocol):
    """Refresh-token families, and the digests of every token each has issued."""

    async def create(self, family: RefreshFamilyRecord, digest: str) -> None:
        """Store a new family whose generation-0 token has ``digest``."""

    async def find(self, digest: str) -> tuple[RefreshFamilyRecord, int] | None:
        """Return the family that issued ``digest`` and that token's generation."""

    async def get(self, family_id: str) -> RefreshFamilyRecord | None:
        """Return the family, revoked or not."""

    async def rotate(
        self,
        family_id: str,
        *,
        from_generation: int,
        digest: str,
        now: datetime,
        jkt: str | None = None,
    ) -> bool:
        """Advance the family to ``from_generation + 1`` with token ``digest``.

        Compare-and-swap: succeeds only if the family is unrevoked and still at
        ``from_generation``; of concurrent rotations exactly one wins (RT-05).

        With ``jkt`` (a DPoP key's thumbprint) the same write binds the family to that
        key (DPOP-11): an unbound family takes it, a family bound to it keeps it, and
        a family bound to another key does not rotate. A bound family is never unbound
        or rebound; ``jkt=None`` leaves the binding as it is.
        """

    async def revoke(self, family_id: str, now: datetime) -> RefreshFamilyRecord | None:
        """Revoke the family; return it if it was live, else ``None``."""

    async def revoke_for_user(
        self, user_id: str, now: datetime, *, keep: str | None = None
    ) -> Sequence[str]:
        """Revoke every live family of the user but ``keep``; return their ids."""

    async def list_for_user(self, user_id: str) -> Sequence[RefreshFamilyRecord]:
        """Return the user's unrevoked families, oldest first."""

    async def purge_expired(self, now: datetime) -> int:
        """Delete families (and their digests) past their absolute expiry."""


class RevocationStore(Protocol):
    """An append-only feed of revocations that every node replays into memory."""

    async def append(self, record: RevocationRecord) -> int:
        """Append ``record``; return its sequence number (increasing)."""

    async def since(self, sequence: int) -> Sequence[tuple[int, RevocationRecord]]:
        """Return the live entries after ``sequence``, in order."""

    async def purge_expired(self, now: datetime) -> int:
        """Forget entries whose ``expires_at`` has passed."""


class EpochReader(Protocol):
    """A number that moves whenever any process appends to the revocation feed."""

    def read(self) -> int:
        """The current epoch; must cost well under a microsecond (it runs per request)."""


@runtime_checkable
class EpochedRevocationStore(Protocol):
    """A revocation feed with an epoch every process sharing it reads in memory (SQLite:
    a mapped file beside the database). A process whose epoch moved replays the feed
    before it answers, so revocations are exact across processes with no polling window.
    Backends shared over a network (Redis, PostgreSQL) push instead."""

    @property
    def epoch(self) -> EpochReader | None:
        """The epoch, once the store is open (``None`` where there is none, e.g. in memory)."""


class OneTimeStore(Protocol):
    """Single-use values with a deadline, shared by every node.

    What core keeps here: the ids of DPoP proofs already seen (replay), device-binding
    challenges, and the digests of links sent by mail. Keys are namespaced digests or
    random ids that core chooses (``dpop:<jti>``); values are short strings. An entry
    whose ``expires_at`` has passed (on core's clock, passed in as ``now``) counts as
    absent, whatever the backend still holds.
    """

    async def put(self, key: str, value: str, *, now: datetime, expires_at: datetime) -> bool:
        """Store ``value`` under ``key`` unless a live entry is there; return whether it
        was stored. Atomic: of concurrent puts of one key exactly one returns ``True``."""

    async def take(self, key: str, now: datetime) -> str | None:
        """Remove the live entry under ``key`` and return its value (``None`` if there is
        none). Atomic: of concurrent takes of one key at most one gets the value."""

    async def purge_expired(self, now: datetime) -> int:
        """Delete entries whose deadline has passed; return how many."""


class SecurityLogStore(Protocol):
    """The persisted security log: append-only, read per subject, purged by age."""

    async def add(self, events: Sequence[SecurityEventRecord]) -> None:
        """Append ``events`` (one batch; ids are unique)."""

    async def for_subjects(
        self, subjects: Sequence[str], *, limit: int, events: Sequence[str] = ()
    ) -> Sequence[SecurityEventRecord]:
        """The newest ``limit`` events of any of ``subjects``, newest first (ties by id);
        only those named in ``events`` when it is not empty."""

    async def purge_before(self, cutoff: datetime) -> int:
        """Delete the events older than ``cutoff``; return how many (where known)."""


class Notifier(Protocol):
    """Push between nodes: "topic X changed, re-read it" (Redis pub/sub, PostgreSQL NOTIFY).

    Best effort by design: the data is already in the store when a topic is published,
    and every node also polls, so a lost message costs latency, never correctness.
    """

    async def publish(self, topic: str) -> None:
        """Tell every node (this one included) that ``topic`` changed.

        Raises:
            StoreUnavailable: The backend did not take the message.
        """

    async def listen(
        self,
        on_change: Callable[[str], Awaitable[None]],
        *,
        on_status: Callable[[bool], None] | None = None,
    ) -> None:
        """Call ``on_change(topic)`` for every message until cancelled.

        Reconnects on its own after an outage; never returns or raises otherwise.
        ``on_status`` (optional) hears ``True`` each time the subscription is made or
        made again (messages published before it may have been missed) and ``False``
        when it is lost, and when listening stops.
        """


class FastStores(Protocol):
    """The per-request and per-token state: what a fast backend (Redis) holds next to a
    primary database (see :class:`~velvetrope.stores.composite.CompositeStores`).

    Lifecycle, the same for every backend: constructing opens nothing (build one with
    the backend's ``from_url``); :meth:`start` connects (or opens the file) and
    migrates; :meth:`aclose` releases everything; :meth:`start` may then be called
    again (tests start one app several times).
    """

    @property
    def sessions(self) -> SessionStore: ...

    @property
    def throttle(self) -> ThrottleStore: ...

    @property
    def refresh(self) -> RefreshStore: ...

    @property
    def revocations(self) -> RevocationStore: ...

    @property
    def one_time(self) -> OneTimeStore: ...

    @property
    def security_log(self) -> SecurityLogStore: ...

    @property
    def notifier(self) -> Notifier | None:
        """Push between nodes, or ``None`` for single-process backends (they poll)."""

    def session_cache_status(self) -> SessionCacheStatus | None:
        """This node's session near-cache, or ``None`` where lookups are local."""

    async def start(self) -> None:
        """Connect (or open the file) and apply pending migrations; a no-op if started.

        Raises:
            StoreUnavailable: The backend cannot be reached.
            ConfigurationError: The database's schema is newer than this velvetrope.
        """

    async def ping(self) -> None:
        """Check the backend answers.

        Raises:
            StoreUnavailable: It does not.
        """

    async def aclose(self) -> None:
        """Release connections."""


class Stores(FastStores, Protocol):
    """One backend's set of stores, opened and closed together: the fast-moving state
    plus accounts and signing keys."""

    @property
    def users(self) -> UserStore: ...

    @property
    def keys(self) -> KeyStore: ...

    async def migrate(self) -> SchemaVersion | None:
        """Start (which migrates) and report the schema version before and after.

        ``None`` for backends without a schema (memory).

        Raises:
            StoreUnavailable, ConfigurationError: As :meth:`start`.
        """
