"""In-process accounts, sessions and sign-in counters."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from velvetrope.errors import EmailTaken
from velvetrope.stores.records import FailureRecord, SessionRecord, UserRecord

__all__ = ["MemorySessionStore", "MemoryThrottleStore", "MemoryUserStore"]


class MemoryUserStore:
    """Users in a dict, indexed by id and by email."""

    def __init__(self) -> None:
        self._by_id: dict[str, UserRecord] = {}
        self._id_by_email: dict[str, str] = {}

    async def add(self, user: UserRecord) -> None:
        if user.email in self._id_by_email:
            raise EmailTaken
        self._by_id[user.id] = user
        self._id_by_email[user.email] = user.id

    async def get(self, user_id: str) -> UserRecord | None:
        return self._by_id.get(user_id)

    async def get_by_email(self, email: str) -> UserRecord | None:
        user_id = self._id_by_email.get(email)
        return None if user_id is None else self._by_id.get(user_id)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        if (user := self._by_id.get(user_id)) is not None:
            self._by_id[user_id] = dataclasses.replace(user, password_hash=password_hash)

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        if (user := self._by_id.get(user_id)) is not None:
            self._by_id[user_id] = dataclasses.replace(user, disabled=disabled)

    async def set_email_verified(self, user_id: str, at: datetime | None) -> None:
        if (user := self._by_id.get(user_id)) is not None:
            self._by_id[user_id] = dataclasses.replace(user, email_verified_at=at)

    async def list(self, *, limit: int = 100, offset: int = 0) -> Sequence[UserRecord]:
        users = sorted(self._by_id.values(), key=lambda u: (u.created_at, u.id))
        return users[offset : offset + limit]


class MemorySessionStore:
    """Sessions in a dict keyed by digest, with a per-user index."""

    def __init__(self) -> None:
        self._by_digest: dict[str, SessionRecord] = {}
        self._by_user: dict[str, set[str]] = {}

    async def add(self, session: SessionRecord) -> None:
        self._by_digest[session.id_digest] = session
        self._by_user.setdefault(session.user_id, set()).add(session.id_digest)

    async def get(self, id_digest: str) -> SessionRecord | None:
        return self._by_digest.get(id_digest)

    async def touch(self, id_digest: str, last_seen_at: datetime) -> bool:
        session = self._by_digest.get(id_digest)
        if session is None:
            return False
        self._by_digest[id_digest] = dataclasses.replace(session, last_seen_at=last_seen_at)
        return True

    async def bind(self, id_digest: str, device_key: str) -> bool:
        session = self._by_digest.get(id_digest)
        if session is None:
            return False
        self._by_digest[id_digest] = dataclasses.replace(session, device_key=device_key)
        return True

    async def rotate(self, old_digest: str, new: SessionRecord) -> bool:
        # No await between the check and the writes: atomic on one event loop.
        if not self._remove(old_digest):
            return False
        await self.add(new)
        return True

    async def delete(self, id_digest: str) -> bool:
        return self._remove(id_digest)

    async def delete_by_handle(self, user_id: str, handle: str) -> bool:
        for digest in self._by_user.get(user_id, set()):
            if self._by_digest[digest].handle == handle:
                return self._remove(digest)
        return False

    async def list_for_user(self, user_id: str) -> Sequence[SessionRecord]:
        sessions = [self._by_digest[d] for d in self._by_user.get(user_id, set())]
        return sorted(sessions, key=lambda s: (s.created_at, s.handle))

    async def delete_for_user(self, user_id: str, *, keep: str | None = None) -> int:
        doomed = [d for d in self._by_user.get(user_id, set()) if d != keep]
        for digest in doomed:
            self._remove(digest)
        return len(doomed)

    async def purge_expired(self, now: datetime) -> int:
        doomed = [d for d, s in self._by_digest.items() if s.expires_at <= now]
        for digest in doomed:
            self._remove(digest)
        return len(doomed)

    def _remove(self, id_digest: str) -> bool:
        session = self._by_digest.pop(id_digest, None)
        if session is None:
            return False
        owned = self._by_user.get(session.user_id)
        if owned is not None:
            owned.discard(id_digest)
            if not owned:
                del self._by_user[session.user_id]
        return True


class MemoryThrottleStore:
    """Failure counters in a dict."""

    def __init__(self) -> None:
        self._records: dict[str, FailureRecord] = {}

    async def get(self, key: str) -> FailureRecord | None:
        return self._records.get(key)

    async def record_failure(
        self, key: str, now: datetime, *, window_start: datetime
    ) -> FailureRecord:
        return self._count(key, now, window_start)

    def _count(self, key: str, now: datetime, window_start: datetime) -> FailureRecord:
        old = self._records.get(key)
        if old is None or old.first_at < window_start:
            record = FailureRecord(count=1, first_at=now, last_at=now)
        else:
            record = FailureRecord(count=old.count + 1, first_at=old.first_at, last_at=now)
        self._records[key] = record
        return record

    async def count_if(
        self, key: str, now: datetime, *, window_start: datetime, limit: int
    ) -> FailureRecord | None:
        # Nothing awaited between the compare and the count: the event loop is the lock.
        old = self._records.get(key)
        counted = 0 if old is None or old.first_at < window_start else old.count
        if counted >= limit:
            return None
        return self._count(key, now, window_start)

    async def release(self, key: str, *, first_at: datetime) -> bool:
        old = self._records.get(key)
        if old is None or old.first_at != first_at or old.count <= 0:
            return False
        self._records[key] = dataclasses.replace(old, count=old.count - 1)
        return True

    async def clear(self, key: str) -> None:
        self._records.pop(key, None)

    async def purge_before(self, cutoff: datetime) -> int:
        stale = [k for k, r in self._records.items() if r.last_at < cutoff]
        for key in stale:
            del self._records[key]
        return len(stale)
