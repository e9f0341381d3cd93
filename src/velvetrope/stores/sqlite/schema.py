"""The SQLite schema as numbered migrations, applied in order on open.

``PRAGMA user_version`` records the last migration applied. A migration is never
edited once released; changes come as a new entry at the end.
"""

from __future__ import annotations

import sqlite3

from velvetrope.errors import ConfigurationError

__all__ = ["MIGRATIONS", "migrate", "schema_version"]

MIGRATIONS: tuple[str, ...] = (
    # 1: users, sessions, login failure counters.
    """
    CREATE TABLE users (
        id            TEXT PRIMARY KEY,
        email         TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at    REAL NOT NULL,
        disabled      INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE sessions (
        id_digest        TEXT PRIMARY KEY,
        handle           TEXT NOT NULL UNIQUE,
        user_id          TEXT NOT NULL,
        created_at       REAL NOT NULL,
        last_seen_at     REAL NOT NULL,
        expires_at       REAL NOT NULL,
        authenticated_at REAL NOT NULL,
        ip               TEXT NOT NULL,
        user_agent       TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_user ON sessions (user_id, created_at);
    CREATE INDEX sessions_by_expiry ON sessions (expires_at);
    CREATE TABLE login_failures (
        key      TEXT PRIMARY KEY,
        count    INTEGER NOT NULL,
        first_at REAL NOT NULL,
        last_at  REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 2: token state: signing keys and secrets, refresh families, the revocation feed.
    """
    CREATE TABLE signing_keys (
        kid         TEXT PRIMARY KEY,
        purpose     TEXT NOT NULL,
        alg         TEXT NOT NULL,
        private_jwk TEXT NOT NULL,
        created_at  REAL NOT NULL,
        retired_at  REAL,
        expires_at  REAL
    ) WITHOUT ROWID;
    CREATE INDEX signing_keys_by_purpose ON signing_keys (purpose, created_at);
    CREATE TABLE server_secrets (
        name  TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE refresh_families (
        id               TEXT PRIMARY KEY,
        user_id          TEXT NOT NULL,
        created_at       REAL NOT NULL,
        last_used_at     REAL NOT NULL,
        expires_at       REAL NOT NULL,
        authenticated_at REAL NOT NULL,
        generation       INTEGER NOT NULL,
        rotated_at       REAL NOT NULL,
        revoked_at       REAL,
        ip               TEXT NOT NULL,
        user_agent       TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX refresh_families_by_user ON refresh_families (user_id, created_at);
    CREATE INDEX refresh_families_by_expiry ON refresh_families (expires_at);
    CREATE TABLE refresh_tokens (
        digest     TEXT PRIMARY KEY,
        family_id  TEXT NOT NULL,
        generation INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
    CREATE TABLE revocations (
        sequence   INTEGER PRIMARY KEY AUTOINCREMENT,
        kind       TEXT NOT NULL,
        value      TEXT NOT NULL,
        at         REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX revocations_by_expiry ON revocations (expires_at);
    """,
    # 3: single-use values (DPoP proof ids, device-binding challenges, mailed links).
    """
    CREATE TABLE one_time (
        key        TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        expires_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX one_time_by_expiry ON one_time (expires_at);
    """,
    # 4: what a request needs without a user lookup (email, claims), device binding
    # (a session's device key, a token family's key thumbprint), email verification.
    """
    ALTER TABLE users ADD COLUMN email_verified_at REAL;
    ALTER TABLE sessions ADD COLUMN email TEXT NOT NULL DEFAULT '';
    ALTER TABLE sessions ADD COLUMN claims TEXT NOT NULL DEFAULT '';
    ALTER TABLE sessions ADD COLUMN device_key TEXT;
    ALTER TABLE refresh_families ADD COLUMN jkt TEXT;
    """,
    # 5: the persisted security log (public handles only; purged by age).
    """
    CREATE TABLE security_events (
        id         TEXT PRIMARY KEY,
        at         REAL NOT NULL,
        event      TEXT NOT NULL,
        subject    TEXT NOT NULL,
        ip         TEXT NOT NULL,
        user_agent TEXT NOT NULL,
        handle     TEXT NOT NULL,
        detail     TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX security_events_by_subject ON security_events (subject, at);
    CREATE INDEX security_events_by_time ON security_events (at);
    """,
)


def schema_version(conn: sqlite3.Connection) -> int:
    """The database's schema version (``PRAGMA user_version``; 0 when new)."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def statements(script: str) -> list[str]:
    """The SQL statements of ``script``, one by one (``sqlite3.complete_statement``
    decides where each ends, so a trigger's body stays whole)."""
    found: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"an incomplete SQL statement: {pending.strip()[:60]!r}")
    return found


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration newer than the database's ``user_version``.

    Each migration and its version bump commit together, so a crash mid-way leaves
    the database at the previous version. The version is read under the write lock
    (``BEGIN IMMEDIATE``), so processes starting together on a new database (uvicorn's
    workers, say) migrate it once: the others wait for the lock, then find the work
    done. Returns the resulting version.

    Raises:
        ConfigurationError: The database is newer than this velvetrope knows.
    """
    while True:
        conn.execute("BEGIN IMMEDIATE")  # waits up to the connection's busy_timeout
        try:
            current = schema_version(conn)
            if current > len(MIGRATIONS):
                raise ConfigurationError(
                    f"the database is at schema version {current}, newer than this "
                    f"velvetrope ({len(MIGRATIONS)}); upgrade velvetrope"
                )
            if current == len(MIGRATIONS):
                conn.execute("COMMIT")
                return current
            for statement in statements(MIGRATIONS[current]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {current + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
