"""In-process token state: keys, refresh families, the revocation feed."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from velvetrope.stores.records import KeyRecord, RefreshFamilyRecord, RevocationRecord

__all__ = ["MemoryKeyStore", "MemoryOneTimeStore", "MemoryRefreshStore", "MemoryRevocationStore"]


class MemoryKeyStore:
    """Keys and secrets in dicts."""

    def __init__(self) -> None:
        self._keys: dict[str, KeyRecord] = {}
        self._secrets: dict[str, str] = {}

    async def list_keys(self, purpose: str) -> Sequence[KeyRecord]:
        keys = [k for k in self._keys.values() if k.purpose == purpose]
        return sorted(keys, key=lambda k: (k.created_at, k.kid), reverse=True)

    async def add_key(self, key: KeyRecord) -> None:
        self._keys[key.kid] = key

    async def retire_keys(self, purpose: str, *, keep: str, at: datetime, until: datetime) -> int:
        kept = self._keys.get(keep)
        if kept is None:
            return 0
        doomed = [
            k
            for k in self._keys.values()
            if k.purpose == purpose
            and k.retired_at is None
            and (k.created_at, k.kid) < (kept.created_at, kept.kid)
        ]
        for key in doomed:
            self._keys[key.kid] = dataclasses.replace(key, retired_at=at, expires_at=until)
        return len(doomed)

    async def delete_expired_keys(self, now: datetime) -> int:
        doomed = [k for k, v in self._keys.items() if v.expires_at and v.expires_at <= now]
        for kid in doomed:
            del self._keys[kid]
        return len(doomed)

    async def secret(self, name: str, candidate: str) -> str:
        return self._secrets.setdefault(name, candidate)


class MemoryRefreshStore:
    """Families by id, and token digests to (family, generation)."""

    def __init__(self) -> None:
        self._families: dict[str, RefreshFamilyRecord] = {}
        self._digests: dict[str, tuple[str, int]] = {}

    async def create(self, family: RefreshFamilyRecord, digest: str) -> None:
        self._families[family.id] = family
        self._digests[digest] = (family.id, family.generation)

    async def find(self, digest: str) -> tuple[RefreshFamilyRecord, int] | None:
        found = self._digests.get(digest)
        if found is None or found[0] not in self._families:
            return None
        return self._families[found[0]], found[1]

    async def get(self, family_id: str) -> RefreshFamilyRecord | None:
        return self._families.get(family_id)

    async def rotate(
        self,
        family_id: str,
        *,
        from_generation: int,
        digest: str,
        now: datetime,
        jkt: str | None = None,
    ) -> bool:
        family = self._families.get(family_id)
        if family is None or family.revoked_at is not None:
            return False
        if family.generation != from_generation or digest in self._digests:
            return False
        if jkt is not None and family.jkt not in (None, jkt):
            return False
        self._families[family_id] = dataclasses.replace(
            family,
            generation=from_generation + 1,
            rotated_at=now,
            last_used_at=now,
            jkt=family.jkt or jkt,
        )
        self._digests[digest] = (family_id, from_generation + 1)
        return True

    async def revoke(self, family_id: str, now: datetime) -> RefreshFamilyRecord | None:
        family = self._families.get(family_id)
        if family is None or family.revoked_at is not None:
            return None
        self._families[family_id] = dataclasses.replace(family, revoked_at=now)
        return family

    async def revoke_for_user(
        self, user_id: str, now: datetime, *, keep: str | None = None
    ) -> Sequence[str]:
        ids = [f.id for f in await self.list_for_user(user_id) if f.id != keep]
        for family_id in ids:
            await self.revoke(family_id, now)
        return ids

    async def list_for_user(self, user_id: str) -> Sequence[RefreshFamilyRecord]:
        live = [f for f in self._families.values() if f.user_id == user_id and f.revoked_at is None]
        return sorted(live, key=lambda f: (f.created_at, f.id))

    async def purge_expired(self, now: datetime) -> int:
        doomed = {fid for fid, f in self._families.items() if f.expires_at <= now}
        for fid in doomed:
            del self._families[fid]
        for digest in [d for d, (fid, _) in self._digests.items() if fid in doomed]:
            del self._digests[digest]
        return len(doomed)


class MemoryRevocationStore:
    """The revocation feed as a list."""

    def __init__(self) -> None:
        self._entries: list[tuple[int, RevocationRecord]] = []
        self._next = 1

    async def append(self, record: RevocationRecord) -> int:
        sequence = self._next
        self._next += 1
        self._entries.append((sequence, record))
        return sequence

    async def since(self, sequence: int) -> Sequence[tuple[int, RevocationRecord]]:
        return [(n, r) for n, r in self._entries if n > sequence]

    async def purge_expired(self, now: datetime) -> int:
        before = len(self._entries)
        self._entries = [(n, r) for n, r in self._entries if r.expires_at > now]
        return before - len(self._entries)


class MemoryOneTimeStore:
    """Single-use values in a dict (one process: every check-and-set is atomic)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, datetime]] = {}

    async def put(self, key: str, value: str, *, now: datetime, expires_at: datetime) -> bool:
        held = self._entries.get(key)
        if held is not None and held[1] > now:
            return False
        self._entries[key] = (value, expires_at)
        return True

    async def take(self, key: str, now: datetime) -> str | None:
        held = self._entries.pop(key, None)
        return held[0] if held is not None and held[1] > now else None

    async def purge_expired(self, now: datetime) -> int:
        due = [k for k, (_, deadline) in self._entries.items() if deadline <= now]
        for key in due:
            del self._entries[key]
        return len(due)
