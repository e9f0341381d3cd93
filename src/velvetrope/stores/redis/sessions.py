"""Redis sessions and sign-in failure counters.

A session is one hash under its own digest, so the per-request ``get`` is one
``HGETALL``. Its owner's index and the global expiry index live in other slots;
they are written after the session and cleaned after it, so an index may name a
session that is gone (skipped, then pruned) but never misses a live one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import cast

from redis.typing import EncodableT, FieldT

from velvetrope.stores.records import FailureRecord, SessionRecord, dump_claims, load_claims
from velvetrope.stores.redis._base import (
    OUTAGES,
    PURGE_BATCH,
    RedisTable,
    at,
    expiry_member,
    guard,
    outage,
    ttl_ms,
    us,
)
from velvetrope.stores.redis._client import AnyPipeline, queue_script

__all__ = ["RedisSessionStore", "RedisThrottleStore"]

MAX_PASSES = 16
"""How often "log out everywhere" re-reads the index for sessions added meanwhile."""


def _fields(s: SessionRecord) -> dict[FieldT, EncodableT]:
    fields: dict[FieldT, EncodableT] = {
        "h": s.handle,
        "u": s.user_id,
        "c": us(s.created_at),
        "l": us(s.last_seen_at),
        "e": us(s.expires_at),
        "a": us(s.authenticated_at),
        "ip": s.ip,
        "ua": s.user_agent,
        "em": s.email,
    }
    if s.claims:
        fields["cl"] = dump_claims(s.claims)
    if s.device_key is not None:
        fields["dk"] = s.device_key
    return fields


def _session(digest: str, f: Mapping[str, str]) -> SessionRecord:
    return SessionRecord(
        id_digest=digest,
        handle=f["h"],
        user_id=f["u"],
        created_at=at(f["c"]),
        last_seen_at=at(f["l"]),
        expires_at=at(f["e"]),
        authenticated_at=at(f["a"]),
        ip=f["ip"],
        user_agent=f["ua"],
        email=f.get("em", ""),
        claims=load_claims(f.get("cl")),
        device_key=f.get("dk"),
    )


def _ttl(s: SessionRecord) -> int:
    return ttl_ms(s.expires_at, s.created_at, s.last_seen_at, s.authenticated_at)


class RedisSessionStore(RedisTable):
    """Sessions as hashes keyed by digest, with a set of digests per user."""

    async def add(self, session: SessionRecord) -> None:
        with guard():
            await self._put(session)
            await self._list(session)

    async def _put(self, s: SessionRecord) -> None:
        # One transaction on one key: the session never exists without its TTL.
        key = self._keys.session(s.id_digest)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=_fields(s))
            pipe.pexpire(key, _ttl(s))
            await pipe.execute()

    async def _list(self, s: SessionRecord) -> None:
        index, ttl = self._keys.user_sessions(s.user_id), _ttl(s)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.sadd(index, s.id_digest)
            # The index outlives the longest of its sessions, and no longer.
            pipe.pexpire(index, ttl, nx=True)
            pipe.pexpire(index, ttl, gt=True)
            pipe.zadd(
                self._keys.session_expiry,
                {expiry_member(s.id_digest, s.user_id): us(s.expires_at)},
            )
            await pipe.execute()

    async def _unlist(self, user_id: str, digests: Sequence[str]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.srem(self._keys.user_sessions(user_id), *digests)
            pipe.zrem(self._keys.session_expiry, *(expiry_member(d, user_id) for d in digests))
            await pipe.execute()

    async def get(self, id_digest: str) -> SessionRecord | None:
        # The per-request read: one HGETALL, and a plain try (no context manager).
        try:
            fields = await self._client.hgetall(self._keys.session(id_digest))
        except OUTAGES as exc:
            raise outage(exc) from exc
        # decode_responses=True: every reply is str, whatever the stubs allow.
        return _session(id_digest, cast("dict[str, str]", fields)) if fields else None

    async def touch(self, id_digest: str, last_seen_at: datetime) -> bool:
        with guard():
            written = await self._scripts.set_if_present(
                keys=[self._keys.session(id_digest)], args=["l", us(last_seen_at)]
            )
        return bool(written == 1)

    async def bind(self, id_digest: str, device_key: str) -> bool:
        with guard():
            written = await self._scripts.set_if_present(
                keys=[self._keys.session(id_digest)], args=["dk", device_key]
            )
        return bool(written == 1)

    async def rotate(self, old_digest: str, new: SessionRecord) -> bool:
        with guard():
            # Consuming the old session is the atomic step: one caller deletes it.
            owner = await self._scripts.delete_session(
                keys=[self._keys.session(old_digest)], args=[new.user_id]
            )
            if owner is None:
                return False
            await self._put(new)
            swapped = await self._scripts.swap_member(
                keys=[self._keys.user_sessions(new.user_id)],
                args=[old_digest, new.id_digest, _ttl(new)],
            )
            async with self._client.pipeline(transaction=False) as pipe:
                if swapped == 1:
                    pipe.zadd(
                        self._keys.session_expiry,
                        {expiry_member(new.id_digest, new.user_id): us(new.expires_at)},
                    )
                else:  # "log out everywhere" ran meanwhile and ends this session too
                    pipe.execute_command("DEL", self._keys.session(new.id_digest))
                pipe.zrem(self._keys.session_expiry, expiry_member(old_digest, new.user_id))
                await pipe.execute()
        return bool(swapped == 1)

    async def delete(self, id_digest: str) -> bool:
        with guard():
            owner = await self._scripts.delete_session(keys=[self._keys.session(id_digest)])
            if owner is None:
                return False
            await self._unlist(str(owner), [id_digest])
        return True

    async def delete_by_handle(self, user_id: str, handle: str) -> bool:
        index = self._keys.user_sessions(user_id)
        with guard():
            digests = sorted(cast("set[str]", await self._client.smembers(index)))
            async with self._client.pipeline(transaction=False) as pipe:
                for digest in digests:
                    pipe.hget(self._keys.session(digest), "h")
                handles = await pipe.execute()
            found = [d for d, h in zip(digests, handles, strict=True) if h == handle]
            if not found:
                return False
            owner = await self._scripts.delete_session(
                keys=[self._keys.session(found[0])], args=[user_id]
            )
            if owner is None:
                return False
            await self._unlist(user_id, found[:1])
        return True

    async def list_for_user(self, user_id: str) -> Sequence[SessionRecord]:
        index = self._keys.user_sessions(user_id)
        with guard():
            digests = sorted(cast("set[str]", await self._client.smembers(index)))
            async with self._client.pipeline(transaction=False) as pipe:
                for digest in digests:
                    pipe.hgetall(self._keys.session(digest))
                rows = await pipe.execute()
        sessions = [
            _session(d, f) for d, f in zip(digests, rows, strict=True) if f.get("u") == user_id
        ]
        return sorted(sessions, key=lambda s: (s.created_at, s.handle))

    async def delete_for_user(self, user_id: str, *, keep: str | None = None) -> int:
        """Unlist, then delete; repeat until a pass finds nothing new.

        Unlisting first is what makes a concurrent ``rotate`` of one of these sessions
        lose (its index swap finds the old digest gone), and the repeat catches
        sessions listed while a pass ran, so none started before the call survives.
        """
        index, deleted = self._keys.user_sessions(user_id), 0
        with guard():
            for _ in range(MAX_PASSES):
                taken = await self._scripts.take_all(
                    keys=[index], args=[] if keep is None else [keep]
                )
                if not taken:
                    break
                async with self._client.pipeline(transaction=False) as pipe:
                    for digest in taken:
                        await queue_script(
                            pipe,
                            self._scripts.delete_session,
                            [self._keys.session(digest)],
                            [user_id],
                        )
                    owners = await pipe.execute()
                deleted += sum(owner is not None for owner in owners)
                await self._client.zrem(
                    self._keys.session_expiry, *(expiry_member(d, user_id) for d in taken)
                )
        return deleted

    async def purge_expired(self, now: datetime) -> int:
        cutoff = us(now)

        async def purge(digest: str, pipe: AnyPipeline) -> None:
            await queue_script(
                pipe, self._scripts.purge_session, [self._keys.session(digest)], [cutoff]
            )

        def forget(pipe: AnyPipeline, digest: str, user_id: str, outcome: int) -> bool:
            if outcome != -1:  # deleted now, or already ended by its TTL
                pipe.srem(self._keys.user_sessions(user_id), digest)
            return outcome == 1

        return await self._purge_index(self._keys.session_expiry, cutoff, purge, forget)


class RedisThrottleStore(RedisTable):
    """Failure counters as hashes that expire when their window ends.

    A global index of the counters by their last failure serves ``purge_before``;
    like the session indexes it is written after the counter and may name one that
    is gone.
    """

    async def get(self, key: str) -> FailureRecord | None:
        with guard():
            row = await self._client.hmget(self._keys.failures(key), "n", "f", "l")
        count, first, last = cast("list[str | None]", row)
        if count is None or first is None or last is None:
            return None
        return FailureRecord(count=int(count), first_at=at(first), last_at=at(last))

    async def record_failure(
        self, key: str, now: datetime, *, window_start: datetime
    ) -> FailureRecord:
        with guard():
            count, first = await self._scripts.record_failure(
                keys=[self._keys.failures(key)], args=[us(now), us(window_start)]
            )
            await self._client.zadd(self._keys.failures_by_last, {key: us(now)}, gt=True)
        return FailureRecord(count=int(count), first_at=at(first), last_at=now)

    async def count_if(
        self, key: str, now: datetime, *, window_start: datetime, limit: int
    ) -> FailureRecord | None:
        if limit < 1:
            return None
        with guard():
            counted = await self._scripts.record_failure(
                keys=[self._keys.failures(key)], args=[us(now), us(window_start), limit]
            )
            if counted is None:
                return None
            count, first = counted
            await self._client.zadd(self._keys.failures_by_last, {key: us(now)}, gt=True)
        return FailureRecord(count=int(count), first_at=at(first), last_at=now)

    async def release(self, key: str, *, first_at: datetime) -> bool:
        with guard():
            taken = await self._scripts.release(
                keys=[self._keys.failures(key)], args=[us(first_at)]
            )
        return bool(taken)

    async def clear(self, key: str) -> None:
        with guard():
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.execute_command("DEL", self._keys.failures(key))
                pipe.zrem(self._keys.failures_by_last, key)
                await pipe.execute()

    async def purge_before(self, cutoff: datetime) -> int:
        """Delete counters whose last failure is before ``cutoff``; return the count.

        Their TTLs end them anyway once core stops counting them; this also cleans
        the index and honours a ``cutoff`` on any clock.
        """
        purged, limit = 0, us(cutoff)
        with guard():
            while True:
                keys = cast(
                    "list[str]",
                    await self._client.zrangebyscore(
                        self._keys.failures_by_last, "-inf", f"({limit}", start=0, num=PURGE_BATCH
                    ),
                )
                if not keys:
                    break
                async with self._client.pipeline(transaction=False) as pipe:
                    for key in keys:
                        await queue_script(
                            pipe, self._scripts.purge_counter, [self._keys.failures(key)], [limit]
                        )
                    outcomes = await pipe.execute()
                # A counter failed again meanwhile (-1) is re-indexed by that failure.
                await self._client.zrem(self._keys.failures_by_last, *keys)
                purged += outcomes.count(1)
                if len(keys) < PURGE_BATCH:
                    break
        return purged
