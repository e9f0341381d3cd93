"""In-process stores: for tests, demos and single-process apps that may lose state on restart."""

from __future__ import annotations

from typing import TYPE_CHECKING

from velvetrope.stores.memory.accounts import (
    MemorySessionStore,
    MemoryThrottleStore,
    MemoryUserStore,
)
from velvetrope.stores.memory.security_log import MemorySecurityLogStore
from velvetrope.stores.memory.tokens import (
    MemoryKeyStore,
    MemoryOneTimeStore,
    MemoryRefreshStore,
    MemoryRevocationStore,
)

if TYPE_CHECKING:
    from velvetrope.stores.registry import StoreOptions

__all__ = ["MemoryStores"]


class MemoryStores:
    """Every store, in memory. Nothing survives the process."""

    def __init__(self) -> None:
        self._users = MemoryUserStore()
        self._sessions = MemorySessionStore()
        self._throttle = MemoryThrottleStore()
        self._keys = MemoryKeyStore()
        self._refresh = MemoryRefreshStore()
        self._revocations = MemoryRevocationStore()
        self._one_time = MemoryOneTimeStore()
        self._security_log = MemorySecurityLogStore()

    @property
    def users(self) -> MemoryUserStore:
        return self._users

    @property
    def sessions(self) -> MemorySessionStore:
        return self._sessions

    @property
    def throttle(self) -> MemoryThrottleStore:
        return self._throttle

    @property
    def keys(self) -> MemoryKeyStore:
        return self._keys

    @property
    def refresh(self) -> MemoryRefreshStore:
        return self._refresh

    @property
    def revocations(self) -> MemoryRevocationStore:
        return self._revocations

    @property
    def security_log(self) -> MemorySecurityLogStore:
        return self._security_log

    @property
    def one_time(self) -> MemoryOneTimeStore:
        return self._one_time

    @property
    def notifier(self) -> None:
        return None  # one process: nothing to push to

    @classmethod
    def from_url(cls, url: str, options: StoreOptions) -> MemoryStores:
        """``memory://``: a new, empty set of stores (``options`` do not apply)."""
        del url, options
        return cls()

    def session_cache_status(self) -> None:
        return None  # lookups are local

    async def start(self) -> None:
        return None

    async def migrate(self) -> None:
        return None  # no schema

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None  # the data stays: started again, the stores still hold it
