"""Revocation that works on access tokens, checked in process in O(1) (TERM-02, TERM-03).

Three kinds of entry, all replayed from the store's revocation feed:

* ``jti``: one access token (logout, RFC 7009 revoke). Keyed by ``jti``, never by the
  token string: ECDSA signatures are malleable, so a twin token has the same ``jti``.
* ``family``: every access token of one refresh family (device sign-out, refresh reuse).
* ``user``: every token of the user issued before a cut-off (log out everywhere,
  password change, account disabled).

Writes apply locally at once (the very next request on this node is refused) and go
to the feed. Other processes see them in one of two ways:

* exactly, where the store has an epoch every process reads in memory (SQLite: any
  number of workers and processes on one database file): a request whose process is
  :meth:`RevocationState.behind` replays the feed before it is answered;
* within milliseconds, where the store pushes (Redis pub/sub, PostgreSQL NOTIFY), and
  within ``poll`` should a push be lost.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from velvetrope.clock import Clock, system_clock
from velvetrope.core.tokens.claims import AccessClaims
from velvetrope.errors import StoreUnavailable
from velvetrope.stores.protocols import (
    EpochedRevocationStore,
    EpochReader,
    Notifier,
    RevocationStore,
)
from velvetrope.stores.records import RevocationRecord

__all__ = ["TOPIC", "RevocationState"]

TOPIC = "revocations"
_logger = logging.getLogger("velvetrope")


class RevocationState:
    """The in-process mirror of the revocation feed."""

    def __init__(
        self,
        store: RevocationStore,
        *,
        notifier: Notifier | None = None,
        now: Clock = system_clock,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._now = now
        self._jtis: dict[str, datetime] = {}
        self._families: dict[str, datetime] = {}
        self._cutoffs: dict[str, tuple[float, datetime]] = {}
        self._sequence = 0
        self._lock = asyncio.Lock()
        self.synced_at: datetime | None = None
        self._epoch: EpochReader | None = None
        self._synced_epoch = 0

    def behind(self) -> bool:
        """Whether another process revoked something since the last replay (one read
        of shared memory; always ``False`` for stores without an epoch)."""
        epoch = self._epoch
        return epoch is not None and epoch.read() != self._synced_epoch

    def is_revoked(self, claims: AccessClaims) -> bool:
        """Whether a verified token has been revoked (three dict lookups)."""
        if claims.jti in self._jtis or claims.sid in self._families:
            return True
        cutoff = self._cutoffs.get(claims.sub)
        return cutoff is not None and claims.issued_at.timestamp() < cutoff[0]

    def family_revoked(self, family_id: str) -> bool:
        """Whether the family is on the revocation list."""
        return family_id in self._families

    async def revoke_jti(self, jti: str, *, until: datetime) -> None:
        """Deny one access token until it would have expired anyway."""
        await self._add(RevocationRecord("jti", jti, self._now(), until))

    async def revoke_family(self, family_id: str, *, until: datetime) -> None:
        """Deny every access token of a family (``until``: the last such token's expiry)."""
        await self._add(RevocationRecord("family", family_id, self._now(), until))

    async def revoke_user(self, user_id: str, *, until: datetime) -> None:
        """Deny every token of the user issued before now (whole seconds, as ``iat`` is)."""
        now = self._now().replace(microsecond=0)
        await self._add(RevocationRecord("user", user_id, now, until))

    async def _add(self, record: RevocationRecord) -> None:
        await self._store.append(record)
        self._apply(record)
        if self._notifier is not None:
            try:
                await self._notifier.publish(TOPIC)
            except StoreUnavailable as exc:  # stored already; other nodes' polling catches up
                _logger.warning("revocation push failed: %s", exc.detail)

    def _apply(self, record: RevocationRecord) -> None:
        if record.kind == "jti":
            _extend(self._jtis, record.value, record.expires_at)
        elif record.kind == "family":
            _extend(self._families, record.value, record.expires_at)
        elif record.kind == "user":
            old = self._cutoffs.get(record.value)
            cutoff = record.at.timestamp()
            if old is None or cutoff > old[0]:
                self._cutoffs[record.value] = (cutoff, record.expires_at)

    async def sync(self) -> int:
        """Replay new feed entries and forget expired ones; return how many were new.

        Raises:
            StoreUnavailable: The store did not answer (the caller keeps the last state
                and reports staleness).
        """
        async with self._lock:
            store = self._store
            # The store opens its epoch with its database, so look again on every replay.
            epoch = store.epoch if isinstance(store, EpochedRevocationStore) else None
            # Read before the query: an append committed meanwhile moves it again.
            mark = 0 if epoch is None else epoch.read()
            entries = await store.since(self._sequence)
            for sequence, record in entries:
                self._apply(record)
                self._sequence = max(self._sequence, sequence)
            self._forget_expired()
            self.synced_at = self._now()
            self._epoch, self._synced_epoch = epoch, mark
            return len(entries)

    def _forget_expired(self) -> None:
        now = self._now()
        for table in (self._jtis, self._families):
            for key in [k for k, until in table.items() if until <= now]:
                del table[key]
        for user in [u for u, (_, until) in self._cutoffs.items() if until <= now]:
            del self._cutoffs[user]

    def staleness(self) -> timedelta | None:
        """How long since the last successful sync (``None`` before the first)."""
        return None if self.synced_at is None else self._now() - self.synced_at


def _extend(table: dict[str, datetime], key: str, until: datetime) -> None:
    if key not in table or table[key] < until:
        table[key] = until
