"""Redis token state: refresh families (rotated by compare-and-swap), the revocation feed
and single-use values.

A family is one hash holding the record and every digest it issued (``d:<digest>``
fields), so rotation is one script on one key. Finding a family by a token's
digest goes through a small lookup key in the digest's own slot, written only
after the family recorded the digest: the family stays the source of truth, and
a lookup key whose digest the family does not list finds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from redis.typing import EncodableT, FieldT

from velvetrope.stores.records import RefreshFamilyRecord, RevocationRecord
from velvetrope.stores.redis._base import (
    PURGE_BATCH,
    RedisTable,
    at,
    expiry_member,
    guard,
    ttl_ms,
    us,
)
from velvetrope.stores.redis._client import AnyPipeline, queue_script
from velvetrope.stores.redis.sessions import MAX_PASSES

__all__ = ["RedisOneTimeStore", "RedisRefreshStore", "RedisRevocationStore"]

FIELDS = ("u", "c", "x", "a", "g", "r", "l", "v", "ip", "ua", "k")
"""The record's hash fields, in the order :func:`_family` reads them."""


def _fields(f: RefreshFamilyRecord) -> dict[FieldT, EncodableT]:
    fields: dict[FieldT, EncodableT] = {
        "u": f.user_id,
        "c": us(f.created_at),
        "x": us(f.expires_at),
        "a": us(f.authenticated_at),
        "g": f.generation,
        "r": us(f.rotated_at),
        "l": us(f.last_used_at),
        "ip": f.ip,
        "ua": f.user_agent,
    }
    if f.revoked_at is not None:
        fields["v"] = us(f.revoked_at)
    if f.jkt is not None:
        fields["k"] = f.jkt
    return fields


def _family(family_id: str, row: Sequence[str | None]) -> RefreshFamilyRecord:
    user_id, created, expires, authenticated, generation, rotated, used, revoked, ip, ua, jkt = row[
        : len(FIELDS)
    ]
    return RefreshFamilyRecord(
        id=family_id,
        user_id=str(user_id),
        created_at=at(str(created)),
        last_used_at=at(str(used)),
        expires_at=at(str(expires)),
        authenticated_at=at(str(authenticated)),
        generation=int(str(generation)),
        rotated_at=at(str(rotated)),
        revoked_at=None if revoked is None else at(revoked),
        ip=str(ip),
        user_agent=str(ua),
        jkt=jkt,
    )


def _ttl(f: RefreshFamilyRecord) -> int:
    return ttl_ms(f.expires_at, f.created_at, f.last_used_at, f.rotated_at, f.authenticated_at)


class RedisRefreshStore(RedisTable):
    """Families as hashes, digest lookup keys, a set of unrevoked families per user."""

    async def create(self, family: RefreshFamilyRecord, digest: str) -> None:
        key, ttl = self._keys.family(family.id), _ttl(family)
        index = self._keys.user_families(family.user_id)
        with guard():
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping={**_fields(family), f"d:{digest}": family.generation})
                pipe.pexpire(key, ttl)
                await pipe.execute()
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.set(self._keys.refresh_digest(digest), family.id, px=ttl, nx=True)
                pipe.sadd(index, family.id)
                pipe.pexpire(index, ttl, nx=True)
                pipe.pexpire(index, ttl, gt=True)
                pipe.zadd(
                    self._keys.family_expiry,
                    {expiry_member(family.id, family.user_id): us(family.expires_at)},
                )
                await pipe.execute()

    async def find(self, digest: str) -> tuple[RefreshFamilyRecord, int] | None:
        with guard():
            family_id = cast(
                "str | None", await self._client.get(self._keys.refresh_digest(digest))
            )
            if family_id is None:
                return None
            row = cast(
                "list[str | None]",
                await self._client.hmget(self._keys.family(family_id), *FIELDS, f"d:{digest}"),
            )
        if row[0] is None or row[-1] is None:
            return None
        return _family(family_id, row), int(row[-1])

    async def get(self, family_id: str) -> RefreshFamilyRecord | None:
        with guard():
            row = cast(
                "list[str | None]", await self._client.hmget(self._keys.family(family_id), *FIELDS)
            )
        return None if row[0] is None else _family(family_id, row)

    async def rotate(
        self,
        family_id: str,
        *,
        from_generation: int,
        digest: str,
        now: datetime,
        jkt: str | None = None,
    ) -> bool:
        with guard():
            remaining = await self._scripts.rotate_family(
                keys=[self._keys.family(family_id)],
                args=[from_generation, from_generation + 1, digest, us(now), jkt or ""],
            )
            if remaining is None:
                return False
            # Written after the family recorded the digest, and living as long as it.
            await self._client.set(
                self._keys.refresh_digest(digest),
                family_id,
                px=max(int(remaining), 1) if int(remaining) >= 0 else None,
                nx=True,
            )
        return True

    async def revoke(self, family_id: str, now: datetime) -> RefreshFamilyRecord | None:
        with guard():
            row = await self._scripts.revoke_family(
                keys=[self._keys.family(family_id)], args=[us(now), *FIELDS]
            )
            if row is None:
                return None
            family = _family(family_id, row)
            await self._client.srem(self._keys.user_families(family.user_id), family_id)
        return family

    async def revoke_for_user(
        self, user_id: str, now: datetime, *, keep: str | None = None
    ) -> Sequence[str]:
        """Unlist, then revoke; repeat until a pass finds nothing new (as sessions do)."""
        index, revoked = self._keys.user_families(user_id), []
        with guard():
            for _ in range(MAX_PASSES):
                taken = await self._scripts.take_all(
                    keys=[index], args=[] if keep is None else [keep]
                )
                if not taken:
                    break
                async with self._client.pipeline(transaction=False) as pipe:
                    for family_id in taken:
                        await queue_script(
                            pipe,
                            self._scripts.revoke_family,
                            [self._keys.family(family_id)],
                            [us(now), "u"],
                        )
                    rows = await pipe.execute()
                revoked += [f for f, row in zip(taken, rows, strict=True) if row is not None]
        return revoked

    async def list_for_user(self, user_id: str) -> Sequence[RefreshFamilyRecord]:
        with guard():
            ids = sorted(
                cast("set[str]", await self._client.smembers(self._keys.user_families(user_id)))
            )
            async with self._client.pipeline(transaction=False) as pipe:
                for family_id in ids:
                    pipe.hmget(self._keys.family(family_id), *FIELDS)
                rows = await pipe.execute()
        families = [
            _family(f, row)
            for f, row in zip(ids, rows, strict=True)
            if row[0] == user_id and row[FIELDS.index("v")] is None
        ]
        return sorted(families, key=lambda f: (f.created_at, f.id))

    async def purge_expired(self, now: datetime) -> int:
        cutoff = us(now)

        async def purge(family_id: str, pipe: AnyPipeline) -> None:
            await queue_script(
                pipe, self._scripts.purge_family, [self._keys.family(family_id)], [cutoff]
            )

        def forget(pipe: AnyPipeline, family_id: str, user_id: str, outcome: list[Any]) -> bool:
            state, *digests = outcome
            if state != -1:  # deleted now, or already ended by its TTL
                pipe.srem(self._keys.user_families(user_id), family_id)
            for digest in digests:
                pipe.execute_command("UNLINK", self._keys.refresh_digest(digest))
            return bool(state == 1)

        return await self._purge_index(self._keys.family_expiry, cutoff, purge, forget)


class RedisRevocationStore(RedisTable):
    """The feed as a stream whose entry ids are the sequence numbers (``<seq>-0``)."""

    async def append(self, record: RevocationRecord) -> int:
        k = self._keys
        with guard():
            sequence = await self._scripts.append(
                keys=[k.feed_sequence, k.feed_log, k.feed_expiry],
                args=[record.kind, record.value, us(record.at), us(record.expires_at)],
            )
        return int(sequence)

    async def since(self, sequence: int) -> Sequence[tuple[int, RevocationRecord]]:
        with guard():
            entries = cast(
                "list[tuple[str, dict[str, str]]]",
                await self._client.xrange(
                    self._keys.feed_log, min=f"{max(sequence, 0) + 1}-0", max="+"
                ),
            )
        return [
            (
                int(entry_id.partition("-")[0]),
                RevocationRecord(kind=f["k"], value=f["v"], at=at(f["a"]), expires_at=at(f["e"])),
            )
            for entry_id, f in entries
        ]

    async def purge_expired(self, now: datetime) -> int:
        purged = 0
        with guard():
            while True:
                due, deleted = await self._scripts.purge_feed(
                    keys=[self._keys.feed_log, self._keys.feed_expiry],
                    args=[us(now), PURGE_BATCH],
                )
                purged += int(deleted)
                if int(due) < PURGE_BATCH:
                    break
        return purged


class RedisOneTimeStore(RedisTable):
    """Single-use values, each a hash (value, deadline) in its own slot, ending by TTL.

    Both steps are one script on one key; the deadline is compared on core's clock, so a
    key Redis has not yet expired is still absent once core's clock passes it.
    """

    async def put(self, key: str, value: str, *, now: datetime, expires_at: datetime) -> bool:
        with guard():
            stored = await self._scripts.put_once(
                keys=[self._keys.one_time(key)],
                args=[us(now), value, us(expires_at), ttl_ms(expires_at, now)],
            )
        return bool(stored)

    async def take(self, key: str, now: datetime) -> str | None:
        with guard():
            value = await self._scripts.take_once(keys=[self._keys.one_time(key)], args=[us(now)])
        return None if value is None else str(value)

    async def purge_expired(self, now: datetime) -> int:
        """Nothing to do: every entry ends by its TTL."""
        return 0
