"""A bounded map that a flood of one-off keys cannot empty of the keys that matter.

The hot-path caches (verified access tokens, the session near-cache) only ever hold
credentials that verified, so forged or unknown ones never get in. What could still
push good entries out is a flood of *valid* credentials used once each (an account
refreshing tokens in a loop, sessions signed in and dropped). :class:`SegmentedCache`
is a segmented LRU: a new key enters a *probation* segment; a key found again moves
to a *protected* segment (up to ``protected_share`` of the room), whose least recently
used key falls back to probation when it overflows. Eviction takes probation's least
recently used key first. Keys of real traffic (read more than once) live in the
protected segment, and one-off keys only ever churn probation.

All operations are O(1); no locking (one event loop owns each instance).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["SegmentedCache"]

K = TypeVar("K")
V = TypeVar("V")


class SegmentedCache(Generic[K, V]):
    """A segmented-LRU map of at most ``max_entries`` keys."""

    __slots__ = ("_probation", "_protected", "max_entries", "protected_max")

    def __init__(self, max_entries: int, *, protected_share: float = 0.8) -> None:
        """Args:
        max_entries: The most keys held (0: hold nothing).
        protected_share: The part of the room kept for keys read more than once.

        Raises:
            ValueError: A negative size, or a share outside 0..1.
        """
        if max_entries < 0 or not 0 <= protected_share <= 1:
            raise ValueError("a cache size cannot be negative; the share is 0..1")
        self.max_entries = max_entries
        self.protected_max = int(max_entries * protected_share)
        self._probation: OrderedDict[K, V] = OrderedDict()
        self._protected: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value under ``key`` (``None`` if absent); a hit counts as a use."""
        protected = self._protected
        value = protected.get(key)
        if value is not None:
            protected.move_to_end(key)
            return value
        value = self._probation.pop(key, None)
        if value is None:
            return None
        # A second use: promote, and demote protected's coldest key if it is full.
        protected[key] = value
        if len(protected) > self.protected_max:
            cold, cold_value = protected.popitem(last=False)
            self._probation[cold] = cold_value
        return value

    def put(self, key: K, value: V) -> list[tuple[K, V]]:
        """Insert or replace ``key``; return what was evicted to make room."""
        if key in self._protected:
            self._protected[key] = value
            self._protected.move_to_end(key)
            return []
        if self.max_entries == 0:
            return [(key, value)]
        self._probation[key] = value
        self._probation.move_to_end(key)
        evicted = []
        while len(self._probation) + len(self._protected) > self.max_entries:
            source = self._probation if self._probation else self._protected
            evicted.append(source.popitem(last=False))
        return evicted

    def pop(self, key: K) -> V | None:
        """Remove ``key``; return its value (``None`` if absent)."""
        value = self._protected.pop(key, None)
        if value is None:
            value = self._probation.pop(key, None)
        return value

    def clear(self) -> None:
        """Remove everything."""
        self._probation.clear()
        self._protected.clear()

    def items(self) -> Iterator[tuple[K, V]]:
        """Every entry (probation first); do not change the cache while iterating."""
        yield from self._probation.items()
        yield from self._protected.items()

    def __contains__(self, key: object) -> bool:
        return key in self._protected or key in self._probation

    def __len__(self) -> int:
        return len(self._probation) + len(self._protected)
