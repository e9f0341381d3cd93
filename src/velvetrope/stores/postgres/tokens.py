"""PostgreSQL token state: keys and secrets, refresh families, the revocation feed."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from velvetrope.stores.postgres._db import Database, PostgresTable, count, maybe_utc, utc
from velvetrope.stores.records import KeyRecord, RefreshFamilyRecord, RevocationRecord

__all__ = [
    "PostgresKeyStore",
    "PostgresOneTimeStore",
    "PostgresRefreshStore",
    "PostgresRevocationStore",
]

_KEY_COLUMNS = "kid, purpose, alg, private_jwk, created_at, retired_at, expires_at"
_FAMILY_NAMES = (
    "id",
    "user_id",
    "created_at",
    "last_used_at",
    "expires_at",
    "authenticated_at",
    "generation",
    "rotated_at",
    "revoked_at",
    "ip",
    "user_agent",
    "jkt",
)
_FAMILY_COLUMNS = ", ".join(_FAMILY_NAMES)
_FAMILY_COLUMNS_OF_F = ", ".join(f"f.{name}" for name in _FAMILY_NAMES)

_FIND = (
    f"SELECT t.generation, {_FAMILY_COLUMNS_OF_F} FROM refresh_tokens t "
    "JOIN refresh_families f ON f.id = t.family_id WHERE t.digest = $1"
)


def _key(row: asyncpg.Record) -> KeyRecord:
    return KeyRecord(
        kid=row[0],
        purpose=row[1],
        alg=row[2],
        private_jwk=row[3],
        created_at=utc(row[4]),
        retired_at=maybe_utc(row[5]),
        expires_at=maybe_utc(row[6]),
    )


def _family(row: asyncpg.Record, o: int = 0) -> RefreshFamilyRecord:
    """The family in ``row``, whose columns start at index ``o``."""
    return RefreshFamilyRecord(
        id=row[o],
        user_id=row[o + 1],
        created_at=utc(row[o + 2]),
        last_used_at=utc(row[o + 3]),
        expires_at=utc(row[o + 4]),
        authenticated_at=utc(row[o + 5]),
        generation=row[o + 6],
        rotated_at=utc(row[o + 7]),
        revoked_at=maybe_utc(row[o + 8]),
        ip=row[o + 9],
        user_agent=row[o + 10],
        jkt=row[o + 11],
    )


class PostgresKeyStore(PostgresTable):
    """Keys in ``signing_keys``, secrets in ``server_secrets``."""

    async def list_keys(self, purpose: str) -> Sequence[KeyRecord]:
        rows = await self._all(
            f"SELECT {_KEY_COLUMNS} FROM signing_keys WHERE purpose = $1 "
            "ORDER BY created_at DESC, kid DESC",
            purpose,
        )
        return [_key(r) for r in rows]

    async def add_key(self, key: KeyRecord) -> None:
        await self._write(
            f"INSERT INTO signing_keys ({_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            key.kid,
            key.purpose,
            key.alg,
            key.private_jwk,
            key.created_at,
            key.retired_at,
            key.expires_at,
        )

    async def retire_keys(self, purpose: str, *, keep: str, at: datetime, until: datetime) -> int:
        # Only keys older than `keep`: two nodes rotating at once must not retire each
        # other's new key and leave the ring with no signer.
        return await self._write(
            "UPDATE signing_keys SET retired_at = $1, expires_at = $2 "
            "WHERE purpose = $3 AND kid <> $4 AND retired_at IS NULL AND (created_at, kid) < "
            "(SELECT created_at, kid FROM signing_keys WHERE kid = $4)",
            at,
            until,
            purpose,
            keep,
        )

    async def delete_expired_keys(self, now: datetime) -> int:
        return await self._write(
            "DELETE FROM signing_keys WHERE expires_at IS NOT NULL AND expires_at <= $1", now
        )

    async def secret(self, name: str, candidate: str) -> str:
        # Two statements, not one: a single INSERT ... ON CONFLICT DO NOTHING with a
        # SELECT in the same statement would read a snapshot taken before a concurrent
        # first caller committed, and find nothing. Under READ COMMITTED the second
        # statement sees whichever value won.
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO server_secrets (name, value) VALUES ($1, $2) "
                "ON CONFLICT (name) DO NOTHING",
                name,
                candidate,
            )
            value = await conn.fetchval("SELECT value FROM server_secrets WHERE name = $1", name)
        return str(value)


class PostgresRefreshStore(PostgresTable):
    """Families in ``refresh_families``; every issued digest in ``refresh_tokens``."""

    async def create(self, family: RefreshFamilyRecord, digest: str) -> None:
        f = family
        async with self._transaction() as conn:
            await conn.execute(
                f"INSERT INTO refresh_families ({_FAMILY_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                f.id,
                f.user_id,
                f.created_at,
                f.last_used_at,
                f.expires_at,
                f.authenticated_at,
                f.generation,
                f.rotated_at,
                f.revoked_at,
                f.ip,
                f.user_agent,
                f.jkt,
            )
            await conn.execute(
                "INSERT INTO refresh_tokens (digest, family_id, generation) VALUES ($1, $2, $3)",
                digest,
                f.id,
                f.generation,
            )

    async def find(self, digest: str) -> tuple[RefreshFamilyRecord, int] | None:
        row = await self._one(_FIND, digest)
        return None if row is None else (_family(row, 1), int(row[0]))

    async def get(self, family_id: str) -> RefreshFamilyRecord | None:
        row = await self._one(
            f"SELECT {_FAMILY_COLUMNS} FROM refresh_families WHERE id = $1", family_id
        )
        return None if row is None else _family(row)

    async def rotate(
        self,
        family_id: str,
        *,
        from_generation: int,
        digest: str,
        now: datetime,
        jkt: str | None = None,
    ) -> bool:
        # Compare-and-swap (RT-05): a concurrent rotation waits on the row lock, then
        # re-checks the WHERE clause against the committed row and matches nothing.
        async with self._transaction() as conn:
            changed = count(
                await conn.execute(
                    "UPDATE refresh_families SET generation = generation + 1, "
                    "rotated_at = $1, last_used_at = $1, jkt = COALESCE(jkt, $4::text) "
                    "WHERE id = $2 AND generation = $3 AND revoked_at IS NULL "
                    "AND ($4::text IS NULL OR jkt IS NULL OR jkt = $4::text)",
                    now,
                    family_id,
                    from_generation,
                    jkt,
                )
            )
            if changed == 1:
                await conn.execute(
                    "INSERT INTO refresh_tokens (digest, family_id, generation) "
                    "VALUES ($1, $2, $3)",
                    digest,
                    family_id,
                    from_generation + 1,
                )
        return changed == 1

    async def revoke(self, family_id: str, now: datetime) -> RefreshFamilyRecord | None:
        # One statement: of concurrent revocations exactly one sees the family live.
        row = await self._one(
            f"UPDATE refresh_families SET revoked_at = $1 "
            f"WHERE id = $2 AND revoked_at IS NULL RETURNING {_FAMILY_COLUMNS}",
            now,
            family_id,
        )
        if row is None:
            return None
        # The family as it was while live: only revoked_at changed, and it was NULL.
        return dataclasses.replace(_family(row), revoked_at=None)

    async def revoke_for_user(
        self, user_id: str, now: datetime, *, keep: str | None = None
    ) -> Sequence[str]:
        rows = await self._all(
            "UPDATE refresh_families SET revoked_at = $1 "
            "WHERE user_id = $2 AND revoked_at IS NULL AND id IS DISTINCT FROM $3 RETURNING id",
            now,
            user_id,
            keep,
        )
        return [str(r[0]) for r in rows]

    async def list_for_user(self, user_id: str) -> Sequence[RefreshFamilyRecord]:
        rows = await self._all(
            f"SELECT {_FAMILY_COLUMNS} FROM refresh_families "
            "WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at, id",
            user_id,
        )
        return [_family(r) for r in rows]

    async def purge_expired(self, now: datetime) -> int:
        # refresh_tokens rows go with their family (ON DELETE CASCADE).
        return await self._write("DELETE FROM refresh_families WHERE expires_at <= $1", now)


class PostgresRevocationStore(PostgresTable):
    """The feed in ``revocations``; ``sequence`` is a ``bigserial``, never reused.

    Args:
        db: The shared pool.
        append_lock: The advisory lock key that orders appends (one per schema).
    """

    def __init__(self, db: Database, *, append_lock: int) -> None:
        super().__init__(db)
        self._append_lock = append_lock

    async def append(self, record: RevocationRecord) -> int:
        # Readers keep a cursor (the highest sequence seen), so entries must become
        # visible in sequence order. Two concurrent inserts could commit out of order
        # (11 after 12) and a reader between the commits would skip 11 for good. The
        # advisory lock, held to commit, makes appends take numbers and commit one at a
        # time; readers, purges and autovacuum never wait for it, and revocations are
        # rare, so the queue is short.
        async with self._transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._append_lock)
            sequence = await conn.fetchval(
                "INSERT INTO revocations (kind, value, at, expires_at) "
                "VALUES ($1, $2, $3, $4) RETURNING sequence",
                record.kind,
                record.value,
                record.at,
                record.expires_at,
            )
        return int(sequence)

    async def since(self, sequence: int) -> Sequence[tuple[int, RevocationRecord]]:
        rows = await self._all(
            "SELECT sequence, kind, value, at, expires_at FROM revocations "
            "WHERE sequence > $1 ORDER BY sequence",
            sequence,
        )
        return [(int(r[0]), RevocationRecord(r[1], r[2], utc(r[3]), utc(r[4]))) for r in rows]

    async def purge_expired(self, now: datetime) -> int:
        return await self._write("DELETE FROM revocations WHERE expires_at <= $1", now)


class PostgresOneTimeStore(PostgresTable):
    """Single-use values in ``one_time``; every step is one atomic statement."""

    async def put(self, key: str, value: str, *, now: datetime, expires_at: datetime) -> bool:
        # Insert, or take over an entry whose deadline passed; a live one stays.
        row = await self._one(
            "INSERT INTO one_time (key, value, expires_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "expires_at = excluded.expires_at WHERE one_time.expires_at <= $4 RETURNING 1",
            key,
            value,
            expires_at,
            now,
        )
        return row is not None

    async def take(self, key: str, now: datetime) -> str | None:
        row = await self._one(
            "DELETE FROM one_time WHERE key = $1 RETURNING value, expires_at", key
        )
        if row is None or utc(row[1]) <= now:
            return None
        value: str = row[0]
        return value

    async def purge_expired(self, now: datetime) -> int:
        return await self._write("DELETE FROM one_time WHERE expires_at <= $1", now)
