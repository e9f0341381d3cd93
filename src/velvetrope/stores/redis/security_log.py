"""The security log in Redis: one sorted set per subject, scored by time.

::

    {prefix}ev:{<subject>}   sorted set: member = the event as JSON, score = µs since epoch
    {prefix}ev:subjects      set of the subjects that have events (for the purge)

Each subject's key carries its own hash tag (one slot per subject, Cluster-safe); no
command touches two keys at once. The purge trims every subject's set by score and
drops a subject from the index once its set is empty (re-adding it should an event
have arrived meanwhile). The anonymous subject's set is trimmed to its newest
``ANONYMOUS_ROWS`` (``ZREMRANGEBYRANK``) in the pipeline that adds to it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from velvetrope.stores.anonymous_events import ANONYMOUS_ROWS, ANONYMOUS_SUBJECT
from velvetrope.stores.records import SecurityEventRecord
from velvetrope.stores.redis._base import at, guard, us
from velvetrope.stores.redis._client import Client

__all__ = ["RedisSecurityLogStore"]

_PAGE = 200


def _member(event: SecurityEventRecord) -> str:
    return json.dumps(
        [
            event.id,
            event.event,
            event.subject,
            event.ip,
            event.user_agent,
            event.handle,
            event.detail,
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _record(member: str, score: float) -> SecurityEventRecord:
    id_, event, subject, ip, user_agent, handle, detail = json.loads(member)
    return SecurityEventRecord(
        id=id_,
        at=at(int(score)),
        event=event,
        subject=subject,
        ip=ip,
        user_agent=user_agent,
        handle=handle,
        detail=detail,
    )


class RedisSecurityLogStore:
    """Events per subject in sorted sets; see the module docstring for the layout."""

    anonymous_rows = ANONYMOUS_ROWS

    def __init__(self, client: Client, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._subjects = prefix + "ev:subjects"

    def _key(self, subject: str) -> str:
        return f"{self._prefix}ev:{{{subject}}}"

    async def add(self, events: Sequence[SecurityEventRecord]) -> None:
        if not events:
            return
        with guard():
            pipe = self._client.pipeline(transaction=False)
            for event in events:
                pipe.zadd(self._key(event.subject), {_member(event): us(event.at)})
            if any(event.subject == ANONYMOUS_SUBJECT for event in events):
                pipe.zremrangebyrank(self._key(ANONYMOUS_SUBJECT), 0, -self.anonymous_rows - 1)
            pipe.sadd(self._subjects, *{event.subject for event in events})
            await pipe.execute()

    async def for_subjects(
        self, subjects: Sequence[str], *, limit: int, events: Sequence[str] = ()
    ) -> Sequence[SecurityEventRecord]:
        kinds = set(events)
        found: list[SecurityEventRecord] = []
        with guard():
            for subject in dict.fromkeys(subjects):
                found.extend(await self._newest(subject, limit, kinds))
        found.sort(key=lambda e: (e.at, e.id), reverse=True)
        return found[:limit]

    async def _newest(self, subject: str, limit: int, kinds: set[str]) -> list[SecurityEventRecord]:
        """The subject's newest ``limit`` events (of ``kinds``, if any), a page at a time."""
        found: list[SecurityEventRecord] = []
        start = 0
        while len(found) < limit:
            page = cast(
                "list[tuple[str, float]]",
                await self._client.zrevrange(
                    self._key(subject), start, start + _PAGE - 1, withscores=True
                ),
            )
            found.extend(
                record
                for record in (_record(m, s) for m, s in page)
                if not kinds or record.event in kinds
            )
            if len(page) < _PAGE:
                break
            start += _PAGE
        return found[:limit]

    async def purge_before(self, cutoff: datetime) -> int:
        purged = 0
        with guard():
            async for subject in self._client.sscan_iter(self._subjects, count=500):
                key = self._key(subject)
                purged += int(await self._client.zremrangebyscore(key, "-inf", f"({us(cutoff)}"))
                if await self._client.zcard(key) == 0:
                    await self._client.srem(self._subjects, subject)
                    if await self._client.exists(key):  # an event came in meanwhile
                        await self._client.sadd(self._subjects, subject)
        return purged
