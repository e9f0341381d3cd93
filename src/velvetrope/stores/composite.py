"""Mixing backends: users and keys in one database, the fast-moving state in another.

A typical deployment past one machine keeps accounts and signing keys in PostgreSQL
and sessions, refresh families, the revocation feed and login counters in Redis:
``CompositeStores(primary=postgres, fast=redis)``.
"""

from __future__ import annotations

from velvetrope.stores.protocols import (
    FastStores,
    KeyStore,
    Notifier,
    OneTimeStore,
    RefreshStore,
    RevocationStore,
    SecurityLogStore,
    SessionStore,
    Stores,
    ThrottleStore,
    UserStore,
)
from velvetrope.stores.records import SchemaVersion, SessionCacheStatus

__all__ = ["CompositeStores"]


class CompositeStores:
    """Users and keys from ``primary``; sessions, tokens, counters and single-use values
    from ``fast``."""

    def __init__(self, primary: Stores, fast: FastStores) -> None:
        self.primary = primary
        self.fast = fast

    @property
    def users(self) -> UserStore:
        return self.primary.users

    @property
    def keys(self) -> KeyStore:
        return self.primary.keys

    @property
    def sessions(self) -> SessionStore:
        return self.fast.sessions

    @property
    def throttle(self) -> ThrottleStore:
        return self.fast.throttle

    @property
    def refresh(self) -> RefreshStore:
        return self.fast.refresh

    @property
    def revocations(self) -> RevocationStore:
        return self.fast.revocations

    @property
    def one_time(self) -> OneTimeStore:
        return self.fast.one_time

    @property
    def security_log(self) -> SecurityLogStore:
        return self.fast.security_log

    @property
    def notifier(self) -> Notifier | None:
        return self.fast.notifier or self.primary.notifier

    def session_cache_status(self) -> SessionCacheStatus | None:
        return self.fast.session_cache_status()

    async def start(self) -> None:
        await self.primary.start()
        await self.fast.start()

    async def migrate(self) -> SchemaVersion | None:
        """Migrate the primary (the fast backend keeps no schema) and start both."""
        version = await self.primary.migrate()
        await self.fast.start()
        return version

    async def ping(self) -> None:
        await self.primary.ping()
        await self.fast.ping()

    async def aclose(self) -> None:
        try:
            await self.fast.aclose()
        finally:
            await self.primary.aclose()
