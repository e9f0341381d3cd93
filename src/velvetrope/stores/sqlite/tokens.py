"""SQLite token state: keys and secrets, refresh families, the revocation feed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from velvetrope.stores.records import KeyRecord, RefreshFamilyRecord, RevocationRecord
from velvetrope.stores.sqlite._db import Database, SQLiteTable, dt, ts
from velvetrope.stores.sqlite.epoch import RevocationEpoch

__all__ = ["SQLiteKeyStore", "SQLiteOneTimeStore", "SQLiteRefreshStore", "SQLiteRevocationStore"]

_KEY_COLUMNS = "kid, purpose, alg, private_jwk, created_at, retired_at, expires_at"
_FAMILY_COLUMNS = (
    "id, user_id, created_at, last_used_at, expires_at, authenticated_at, generation, "
    "rotated_at, revoked_at, ip, user_agent, jkt"
)


def _maybe_ts(instant: datetime | None) -> float | None:
    return None if instant is None else ts(instant)


def _maybe_dt(seconds: float | None) -> datetime | None:
    return None if seconds is None else dt(seconds)


def _key(row: Sequence[Any]) -> KeyRecord:
    return KeyRecord(
        kid=row[0],
        purpose=row[1],
        alg=row[2],
        private_jwk=row[3],
        created_at=dt(row[4]),
        retired_at=_maybe_dt(row[5]),
        expires_at=_maybe_dt(row[6]),
    )


def _family(row: Sequence[Any]) -> RefreshFamilyRecord:
    return RefreshFamilyRecord(
        id=row[0],
        user_id=row[1],
        created_at=dt(row[2]),
        last_used_at=dt(row[3]),
        expires_at=dt(row[4]),
        authenticated_at=dt(row[5]),
        generation=row[6],
        rotated_at=dt(row[7]),
        revoked_at=_maybe_dt(row[8]),
        ip=row[9],
        user_agent=row[10],
        jkt=row[11],
    )


class SQLiteKeyStore(SQLiteTable):
    """Keys in ``signing_keys``, secrets in ``server_secrets``."""

    async def list_keys(self, purpose: str) -> Sequence[KeyRecord]:
        rows = self._all(
            f"SELECT {_KEY_COLUMNS} FROM signing_keys WHERE purpose = ? "
            "ORDER BY created_at DESC, kid DESC",
            (purpose,),
        )
        return [_key(r) for r in rows]

    async def add_key(self, key: KeyRecord) -> None:
        self._write(
            f"INSERT INTO signing_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key.kid,
                key.purpose,
                key.alg,
                key.private_jwk,
                ts(key.created_at),
                _maybe_ts(key.retired_at),
                _maybe_ts(key.expires_at),
            ),
        )

    async def retire_keys(self, purpose: str, *, keep: str, at: datetime, until: datetime) -> int:
        # Only keys older than `keep`: two processes rotating at once must not retire
        # each other's new key and leave the ring with no signer.
        return self._write(
            "UPDATE signing_keys SET retired_at = ?, expires_at = ? "
            "WHERE purpose = ? AND kid != ? AND retired_at IS NULL AND (created_at, kid) < "
            "(SELECT created_at, kid FROM signing_keys WHERE kid = ?)",
            (ts(at), ts(until), purpose, keep, keep),
        )

    async def delete_expired_keys(self, now: datetime) -> int:
        return self._write(
            "DELETE FROM signing_keys WHERE expires_at IS NOT NULL AND expires_at <= ?", (ts(now),)
        )

    async def secret(self, name: str, candidate: str) -> str:
        self._write(
            "INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (name, candidate),
        )
        row = self._one("SELECT value FROM server_secrets WHERE name = ?", (name,))
        return str(row[0])


class SQLiteRefreshStore(SQLiteTable):
    """Families in ``refresh_families``; every issued digest in ``refresh_tokens``."""

    async def create(self, family: RefreshFamilyRecord, digest: str) -> None:
        f = family
        with self._transaction() as conn:
            conn.execute(
                f"INSERT INTO refresh_families ({_FAMILY_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    f.id,
                    f.user_id,
                    ts(f.created_at),
                    ts(f.last_used_at),
                    ts(f.expires_at),
                    ts(f.authenticated_at),
                    f.generation,
                    ts(f.rotated_at),
                    _maybe_ts(f.revoked_at),
                    f.ip,
                    f.user_agent,
                    f.jkt,
                ),
            )
            conn.execute(
                "INSERT INTO refresh_tokens (digest, family_id, generation) VALUES (?, ?, ?)",
                (digest, f.id, f.generation),
            )

    async def find(self, digest: str) -> tuple[RefreshFamilyRecord, int] | None:
        row = self._one(
            "SELECT t.generation, "
            + ", ".join(f"f.{c.strip()}" for c in _FAMILY_COLUMNS.split(","))
            + " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id "
            "WHERE t.digest = ?",
            (digest,),
        )
        return None if row is None else (_family(row[1:]), int(row[0]))

    async def get(self, family_id: str) -> RefreshFamilyRecord | None:
        row = self._one(
            f"SELECT {_FAMILY_COLUMNS} FROM refresh_families WHERE id = ?", (family_id,)
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
        with self._transaction() as conn:
            changed = conn.execute(
                "UPDATE refresh_families SET generation = generation + 1, rotated_at = ?, "
                "last_used_at = ?, jkt = COALESCE(jkt, ?) "
                "WHERE id = ? AND generation = ? AND revoked_at IS NULL "
                "AND (? IS NULL OR jkt IS NULL OR jkt = ?)",
                (ts(now), ts(now), jkt, family_id, from_generation, jkt, jkt),
            ).rowcount
            if changed == 1:
                conn.execute(
                    "INSERT INTO refresh_tokens (digest, family_id, generation) VALUES (?, ?, ?)",
                    (digest, family_id, from_generation + 1),
                )
        return changed == 1

    async def revoke(self, family_id: str, now: datetime) -> RefreshFamilyRecord | None:
        family = await self.get(family_id)
        changed = self._write(
            "UPDATE refresh_families SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (ts(now), family_id),
        )
        return family if changed == 1 else None

    async def revoke_for_user(
        self, user_id: str, now: datetime, *, keep: str | None = None
    ) -> Sequence[str]:
        with self._transaction() as conn:
            rows = conn.execute(
                "UPDATE refresh_families SET revoked_at = ? "
                "WHERE user_id = ? AND revoked_at IS NULL AND id IS NOT ? RETURNING id",
                (ts(now), user_id, keep),
            ).fetchall()
        return [str(r[0]) for r in rows]

    async def list_for_user(self, user_id: str) -> Sequence[RefreshFamilyRecord]:
        rows = self._all(
            f"SELECT {_FAMILY_COLUMNS} FROM refresh_families "
            "WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at, id",
            (user_id,),
        )
        return [_family(r) for r in rows]

    async def purge_expired(self, now: datetime) -> int:
        with self._transaction() as conn:
            conn.execute(
                "DELETE FROM refresh_tokens WHERE family_id IN "
                "(SELECT id FROM refresh_families WHERE expires_at <= ?)",
                (ts(now),),
            )
            return int(
                conn.execute(
                    "DELETE FROM refresh_families WHERE expires_at <= ?", (ts(now),)
                ).rowcount
            )


class SQLiteRevocationStore(SQLiteTable):
    """The feed in ``revocations``; ``sequence`` is the row id, never reused.

    Each append, once committed, is published to the shared revocation epoch (see
    :mod:`velvetrope.stores.sqlite.epoch`), so every process sees it on its next request.
    """

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._epoch: RevocationEpoch | None = None

    @property
    def epoch(self) -> RevocationEpoch | None:
        return self._epoch

    def use_epoch(self, epoch: RevocationEpoch | None) -> None:
        """Publish appends to ``epoch`` (set when the database opens, cleared on close)."""
        self._epoch = epoch

    async def append(self, record: RevocationRecord) -> int:
        # fetchall: the INSERT ... RETURNING finishes (commits) before the epoch moves.
        rows = self._all(
            "INSERT INTO revocations (kind, value, at, expires_at) VALUES (?, ?, ?, ?) "
            "RETURNING sequence",
            (record.kind, record.value, ts(record.at), ts(record.expires_at)),
        )
        sequence = int(rows[0][0])
        if self._epoch is not None:
            self._epoch.publish(sequence)
        return sequence

    async def since(self, sequence: int) -> Sequence[tuple[int, RevocationRecord]]:
        rows = self._all(
            "SELECT sequence, kind, value, at, expires_at FROM revocations "
            "WHERE sequence > ? ORDER BY sequence",
            (sequence,),
        )
        return [(int(r[0]), RevocationRecord(r[1], r[2], dt(r[3]), dt(r[4]))) for r in rows]

    async def purge_expired(self, now: datetime) -> int:
        return self._write("DELETE FROM revocations WHERE expires_at <= ?", (ts(now),))


class SQLiteOneTimeStore(SQLiteTable):
    """Single-use values in the ``one_time`` table; every step is one statement."""

    async def put(self, key: str, value: str, *, now: datetime, expires_at: datetime) -> bool:
        # Insert, or take over an entry whose deadline passed; a live one stays.
        return (
            self._write(
                "INSERT INTO one_time (key, value, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "expires_at = excluded.expires_at WHERE one_time.expires_at <= ?",
                (key, value, ts(expires_at), ts(now)),
            )
            == 1
        )

    async def take(self, key: str, now: datetime) -> str | None:
        # fetchall: a RETURNING statement finishes (and releases its lock) only once read.
        rows = self._all("DELETE FROM one_time WHERE key = ? RETURNING value, expires_at", (key,))
        if not rows or rows[0][1] <= ts(now):
            return None
        value: str = rows[0][0]
        return value

    async def purge_expired(self, now: datetime) -> int:
        return self._write("DELETE FROM one_time WHERE expires_at <= ?", (ts(now),))
