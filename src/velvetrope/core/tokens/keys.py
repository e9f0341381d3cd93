"""Key rings: sign with the newest key, verify with any listed (itsdangerous-style).

Keys live in the :class:`~velvetrope.stores.protocols.KeyStore`, so every node and
every process (the CLI included) sees the same ring. A ring is per *purpose*
(``access`` today, ``internal`` for the hybrid gateway later) and keys never cross
purposes (KEY-03). Each key is bound to one algorithm (JWT-02) and named by its
RFC 7638 thumbprint.

Rotation keeps the previous key verifying until every token it signed has expired
(``overlap``), then deletes it. A ``kid`` the ring does not know triggers at most
one reload from the store per ``reload_every`` (JWT-04: no refetch storms). The
interval counts from the last reload an unknown ``kid`` caused, not from loads for
other reasons: a key another node added after this one loaded (several nodes starting
together, a rotation elsewhere) is found on the first token that names it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from velvetrope.clock import Clock, system_clock
from velvetrope.core.tokens import codec
from velvetrope.core.tokens.codec import Algorithm, Jwk
from velvetrope.errors import StoreUnavailable
from velvetrope.stores.protocols import KeyStore
from velvetrope.stores.records import KeyRecord

__all__ = ["KeyRing", "SigningKey"]


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A loaded key: its id, its one algorithm, the key, and its life."""

    kid: str
    alg: Algorithm
    jwk: Jwk
    created_at: datetime
    retired_at: datetime | None
    expires_at: datetime | None

    @classmethod
    def load(cls, record: KeyRecord) -> SigningKey:
        alg: Algorithm = record.alg  # type: ignore[assignment]
        if alg not in codec.ALGORITHMS:
            raise ValueError(f"key {record.kid} has unsupported algorithm {record.alg!r}")
        return cls(
            kid=record.kid,
            alg=alg,
            jwk=codec.jwk_from_json(record.private_jwk, alg),
            created_at=record.created_at,
            retired_at=record.retired_at,
            expires_at=record.expires_at,
        )


class KeyRing:
    """The signing keys of one purpose, cached in memory and kept in a store."""

    def __init__(
        self,
        store: KeyStore,
        *,
        purpose: str,
        alg: Algorithm,
        overlap: timedelta,
        rotate_every: timedelta | None = None,
        reload_every: timedelta = timedelta(seconds=5),
        now: Clock = system_clock,
    ) -> None:
        """Create a ring.

        Args:
            store: Where keys live.
            purpose: Which ring (``access``...).
            alg: The algorithm new keys get.
            overlap: How long a retired key keeps verifying (≥ the longest token lifetime).
            rotate_every: Rotate when the signing key is older than this (``None``: never).
            reload_every: Minimum time between reloads triggered by unknown ``kid`` values.
            now: The clock.
        """
        self._store = store
        self.purpose = purpose
        self.alg = alg
        self.overlap = overlap
        self.rotate_every = rotate_every
        self._reload_every = reload_every
        self._now = now
        self._keys: dict[str, SigningKey] = {}
        self._signing: SigningKey | None = None
        self._looked_up_at: datetime | None = None  # the last reload for an unknown kid
        self._read_at: datetime | None = None  # the last read of the store (or try)
        self._lock = asyncio.Lock()

    async def load(self, *, rotate: bool = True) -> None:
        """Read the ring from the store; create or rotate the signing key when due."""
        async with self._lock:
            await self._reload()
            if not rotate:
                return
            signer = self._signing
            due = signer is None or signer.alg != self.alg
            if signer is not None and self.rotate_every is not None:
                due = due or self._now() - signer.created_at >= self.rotate_every
            if due:
                await self._rotate_locked()

    async def reload(self) -> None:
        """Re-read the ring from the store (picks up a rotation made elsewhere)."""
        async with self._lock:
            await self._reload()

    async def _reload(self) -> None:
        now = self._now()
        records = await self._store.list_keys(self.purpose)
        keys = [SigningKey.load(r) for r in records if r.expires_at is None or r.expires_at > now]
        self._keys = {k.kid: k for k in keys}
        signers = [k for k in keys if k.retired_at is None]
        self._signing = signers[0] if signers else None
        self._read_at = now

    async def rotate(self) -> SigningKey:
        """Make a new signing key; the old ones verify for ``overlap`` more, then go."""
        async with self._lock:
            return await self._rotate_locked()

    async def _rotate_locked(self) -> SigningKey:
        await self._reload()
        now = self._now()
        # The new key must sort after every existing one (ties, or another node's clock
        # running ahead, would otherwise leave an older key signing).
        newest = max((k.created_at for k in self._keys.values()), default=now)
        created = max(now, newest + timedelta(microseconds=1))
        jwk = codec.generate_jwk(self.alg)
        record = KeyRecord(
            kid=codec.thumbprint(jwk),
            purpose=self.purpose,
            alg=self.alg,
            private_jwk=codec.private_json(jwk),
            created_at=created,
        )
        await self._store.add_key(record)
        await self._store.retire_keys(
            self.purpose, keep=record.kid, at=now, until=now + self.overlap
        )
        await self._store.delete_expired_keys(now)
        await self._reload()
        assert self._signing is not None  # noqa: S101 - just added
        return self._signing

    @property
    def signing_key(self) -> SigningKey:
        """The key new tokens are signed with.

        Raises:
            RuntimeError: :meth:`load` has not run.
        """
        if self._signing is None:
            raise RuntimeError("the key ring is not loaded; call load() first")
        return self._signing

    def lookup(self, kid: str) -> tuple[Jwk, Algorithm] | None:
        """The trusted key and algorithm for ``kid``, or ``None`` (the codec's KeyLookup)."""
        key = self._keys.get(kid)
        if key is None:
            return None
        if key.expires_at is not None and key.expires_at <= self._now():
            return None
        return key.jwk, key.alg

    async def refresh_if_unknown(self, kid: str) -> bool:
        """Reload once if ``kid`` is unknown and the last reload is old enough.

        Returns whether ``kid`` is known afterwards.
        """
        async with self._lock:
            # Checked under the lock: concurrent callers queue here, and only the first
            # of a burst reloads; the rest see the fresh _looked_up_at (JWT-04).
            if kid in self._keys:
                return True
            now = self._now()
            if self._looked_up_at is not None and now - self._looked_up_at < self._reload_every:
                return False
            self._looked_up_at = now
            await self._reload()
        return kid in self._keys

    def keys(self) -> Sequence[SigningKey]:
        """Every key that still verifies, newest first."""
        return sorted(self._keys.values(), key=lambda k: k.created_at, reverse=True)

    async def published(self, *, max_age: timedelta = timedelta(seconds=1)) -> dict[str, Any]:
        """The JWKS as the store holds it, re-read when this node's copy is older than
        ``max_age`` (so a burst of fetches costs one read).

        Nodes that start together on an empty store each make a key, and a rotation on
        one node reaches the others by push or upkeep; a verifier that fetches from any
        node must still learn every key a node may sign with. If the store does not
        answer, the keys this node knows are served (public keys; the verifier's own
        rules decide how long it trusts them).
        """
        async with self._lock:
            now = self._now()
            if self._read_at is None or now - self._read_at >= max_age:
                self._read_at = now  # a store that is down is tried once per max_age too
                with contextlib.suppress(StoreUnavailable):
                    await self._reload()
        return self.jwks()

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document: current and previous public keys (none for HS256)."""
        public = [codec.public_jwk(k.jwk, kid=k.kid, alg=k.alg) for k in self.keys()]
        return {"keys": [jwk for jwk in public if jwk]}
