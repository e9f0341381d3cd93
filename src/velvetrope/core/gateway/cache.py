"""The mint cache: one signature per session, audience and token lifetime (HYB-05, HYB-06).

Keyed by ``(session handle, audience)``, or for a token caller ``(refresh family id,
audience)``. A hit serves the token minted before until ``renew_before`` is left of its
life; a miss mints. Concurrent misses for one key wait for the one mint in flight
(single-flight): a burst of 100 requests from one session signs once. At most
``max_entries`` tokens are kept, least recently used evicted first, each step O(1) (an
``OrderedDict``).

The cache never decides who may have a token: the edge checks the session (idle and
absolute deadlines, read fresh from the store) or the access token on every request
*before* it asks the cache, so a token is only ever served to a live session or token;
and never one that outlives the caller's own credential (``not_after``). Eviction on
sign-out is for the cache's own hygiene and for every node at once
(:meth:`evict_session`, :meth:`evict_user`, :meth:`evict_ending`): a mint that was in
flight while an eviction for its session or user arrived is handed to its waiters but
not kept.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from velvetrope.clock import Clock, system_clock
from velvetrope.core.gateway.tokens import Minted

__all__ = ["MintCache", "MintCacheStatus"]

Key = tuple[str, str]  # (session handle or refresh family id, audience)


@dataclass(frozen=True, slots=True)
class MintCacheStatus:
    """What ``/ready`` reports of the mint cache.

    Attributes:
        enabled: Whether tokens are kept at all.
        entries: Tokens kept now.
        max_entries: The bound.
        hits: Requests served a kept token.
        misses: Requests that minted (or waited for a mint in flight).
        evictions: Tokens dropped by sign-outs and other revocations.
    """

    enabled: bool
    entries: int
    max_entries: int
    hits: int
    misses: int
    evictions: int

    @property
    def hit_ratio(self) -> float | None:
        """Hits over lookups; ``None`` before the first."""
        total = self.hits + self.misses
        return None if total == 0 else self.hits / total


@dataclass(frozen=True, slots=True)
class _Entry:
    minted: Minted
    user_id: str
    session_ends: datetime


class MintCache:
    """Internal tokens already minted, per (session, audience)."""

    def __init__(
        self,
        *,
        max_entries: int,
        renew_before: timedelta,
        now: Clock = system_clock,
    ) -> None:
        """Args:
        max_entries: The bound; 0 keeps nothing (every request mints).
        renew_before: Re-mint when this little of a token's life is left.
        now: The clock.
        """
        if max_entries < 0:
            raise ValueError("max_entries cannot be negative")
        self._max = max_entries
        self._renew_before = renew_before
        self._now = now
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._by_user: dict[str, set[Key]] = {}
        self._by_session: dict[str, set[Key]] = {}
        self._inflight: dict[Key, asyncio.Future[Minted]] = {}
        self._generation = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @property
    def enabled(self) -> bool:
        """Whether tokens are kept."""
        return self._max > 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(
        self,
        *,
        handle: str,
        audience: str,
        user_id: str,
        session_ends: datetime,
        mint: Callable[[], Awaitable[Minted]],
        not_after: datetime | None = None,
    ) -> Minted:
        """The kept token for this session and audience, or a new one from ``mint``.

        ``not_after``: a kept token expiring later is not served to this request (a
        refresh family's older access token must not get the token minted for its newer
        one); ``mint`` signs one for it instead, not kept.

        Raises:
            Whatever ``mint`` raises (its waiters get the same error; nothing is kept).
        """
        key = (handle, audience)
        if not self._max:
            self.misses += 1
            return await mint()
        entry = self._entries.get(key)
        if entry is not None:
            if self._now() < entry.minted.expires_at - self._renew_before:
                if not_after is not None and entry.minted.expires_at > not_after:
                    self.misses += 1
                    return await mint()
                self._entries.move_to_end(key)
                self.hits += 1
                return entry.minted
            self._drop(key)
        self.misses += 1
        pending = self._inflight.get(key)
        if pending is not None:  # single-flight: wait for the mint already running
            minted = await asyncio.shield(pending)
            if not_after is not None and minted.expires_at > not_after:
                return await mint()
            return minted
        future: asyncio.Future[Minted] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        generation = self._generation
        try:
            minted = await mint()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._inflight[key]
        future.set_result(minted)
        if generation == self._generation:  # no eviction arrived while it was minted
            self._keep(key, _Entry(minted, user_id, session_ends))
        return minted

    def _keep(self, key: Key, entry: _Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        self._by_user.setdefault(entry.user_id, set()).add(key)
        self._by_session.setdefault(key[0], set()).add(key)
        if len(self._entries) > self._max:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    def _drop(self, key: Key) -> bool:
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        for index, name in ((self._by_user, entry.user_id), (self._by_session, key[0])):
            keys = index.get(name)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[name]
        return True

    def _evict(self, keys: set[Key] | list[Key]) -> int:
        self._generation += 1
        dropped = sum(self._drop(key) for key in list(keys))
        self.evictions += dropped
        return dropped

    def evict_session(self, handle: str) -> int:
        """Drop the tokens of the session with this handle; return how many."""
        return self._evict(self._by_session.get(handle, set()))

    def evict_user(self, user_id: str) -> int:
        """Drop the tokens of every session of the user; return how many."""
        return self._evict(self._by_user.get(user_id, set()))

    def evict_ending(self, instant: datetime) -> int:
        """Drop the tokens of sessions whose absolute end is at or before ``instant``."""
        return self._evict([k for k, e in self._entries.items() if e.session_ends <= instant])

    def clear(self) -> None:
        """Drop everything (a lost push subscription: messages may have been missed)."""
        self._evict(list(self._entries))

    def status(self) -> MintCacheStatus:
        """A snapshot of the counters."""
        return MintCacheStatus(
            enabled=self.enabled,
            entries=len(self._entries),
            max_entries=self._max,
            hits=self.hits,
            misses=self.misses,
            evictions=self.evictions,
        )
