"""The PostgreSQL schema as numbered migrations, applied in order by ``start()``.

The ``schema_migrations`` table records every version applied. All pending migrations
and their version rows commit in one transaction (PostgreSQL DDL is transactional),
so a failure leaves the database at the previous version. The transaction first takes
an advisory lock, so of several nodes starting at once one migrates and the others
wait, then find nothing left to do. A migration is never edited once released;
changes come as a new entry at the end.

Instants are ``timestamptz`` (microseconds, like :class:`datetime.datetime`). The
revocation feed's ``sequence`` is a ``bigserial``: increasing, never reused.
"""

from __future__ import annotations

import hashlib
import re

from velvetrope.errors import ConfigurationError
from velvetrope.stores.postgres._db import Connection

__all__ = ["MIGRATIONS", "check_schema_name", "lock_key", "migrate", "schema_version"]

MIGRATIONS: tuple[str, ...] = (
    # 1: users, sessions, login failure counters, signing keys and secrets, refresh
    # families and their token digests, the revocation feed.
    """
    CREATE TABLE users (
        id            text PRIMARY KEY,
        email         text NOT NULL CONSTRAINT users_email_key UNIQUE,
        password_hash text NOT NULL,
        created_at    timestamptz NOT NULL,
        disabled      boolean NOT NULL DEFAULT false
    );
    CREATE INDEX users_by_creation ON users (created_at, id);

    CREATE TABLE sessions (
        id_digest        text PRIMARY KEY,
        handle           text NOT NULL UNIQUE,
        user_id          text NOT NULL,
        created_at       timestamptz NOT NULL,
        last_seen_at     timestamptz NOT NULL,
        expires_at       timestamptz NOT NULL,
        authenticated_at timestamptz NOT NULL,
        ip               text NOT NULL,
        user_agent       text NOT NULL
    );
    CREATE INDEX sessions_by_user ON sessions (user_id, created_at);
    CREATE INDEX sessions_by_expiry ON sessions (expires_at);

    CREATE TABLE login_failures (
        key      text PRIMARY KEY,
        count    integer NOT NULL,
        first_at timestamptz NOT NULL,
        last_at  timestamptz NOT NULL
    );
    CREATE INDEX login_failures_by_last ON login_failures (last_at);

    CREATE TABLE signing_keys (
        kid         text PRIMARY KEY,
        purpose     text NOT NULL,
        alg         text NOT NULL,
        private_jwk text NOT NULL,
        created_at  timestamptz NOT NULL,
        retired_at  timestamptz,
        expires_at  timestamptz
    );
    CREATE INDEX signing_keys_by_purpose ON signing_keys (purpose, created_at);

    CREATE TABLE server_secrets (
        name  text PRIMARY KEY,
        value text NOT NULL
    );

    CREATE TABLE refresh_families (
        id               text PRIMARY KEY,
        user_id          text NOT NULL,
        created_at       timestamptz NOT NULL,
        last_used_at     timestamptz NOT NULL,
        expires_at       timestamptz NOT NULL,
        authenticated_at timestamptz NOT NULL,
        generation       integer NOT NULL,
        rotated_at       timestamptz NOT NULL,
        revoked_at       timestamptz,
        ip               text NOT NULL,
        user_agent       text NOT NULL
    );
    CREATE INDEX refresh_families_by_user ON refresh_families (user_id, created_at);
    CREATE INDEX refresh_families_by_expiry ON refresh_families (expires_at);

    CREATE TABLE refresh_tokens (
        digest     text PRIMARY KEY,
        family_id  text NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
        generation integer NOT NULL
    );
    CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

    CREATE TABLE revocations (
        sequence   bigserial PRIMARY KEY,
        kind       text NOT NULL,
        value      text NOT NULL,
        at         timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
    );
    CREATE INDEX revocations_by_expiry ON revocations (expires_at);
    """,
    # 2: single-use values (DPoP proof ids, device-binding challenges, mailed links).
    """
    CREATE TABLE one_time (
        key        text PRIMARY KEY,
        value      text NOT NULL,
        expires_at timestamptz NOT NULL
    );
    CREATE INDEX one_time_by_expiry ON one_time (expires_at);
    """,
    # 3: what a request needs without a user lookup (email, claims), device binding
    # (a session's device key, a token family's key thumbprint), email verification.
    """
    ALTER TABLE users ADD COLUMN email_verified_at timestamptz;
    ALTER TABLE sessions ADD COLUMN email text NOT NULL DEFAULT '';
    ALTER TABLE sessions ADD COLUMN claims text NOT NULL DEFAULT '';
    ALTER TABLE sessions ADD COLUMN device_key text;
    ALTER TABLE refresh_families ADD COLUMN jkt text;
    """,
    # 4: the persisted security log (public handles only; purged by age).
    """
    CREATE TABLE security_events (
        id         text PRIMARY KEY,
        at         timestamptz NOT NULL,
        event      text NOT NULL,
        subject    text NOT NULL,
        ip         text NOT NULL,
        user_agent text NOT NULL,
        handle     text NOT NULL,
        detail     text NOT NULL
    );
    CREATE INDEX security_events_by_subject ON security_events (subject, at);
    CREATE INDEX security_events_by_time ON security_events (at);
    """,
)

_VERSIONS_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_migrations (
        version    integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
    )
"""

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def check_schema_name(name: str) -> str:
    """Return ``name`` if it is a plain PostgreSQL identifier (it is put into SQL text).

    Raises:
        ConfigurationError: It is not lower-case letters, digits and underscores, at most
            63 characters, or it starts with ``pg_`` (reserved for the system).
    """
    if not _SCHEMA_NAME.fullmatch(name) or name.startswith("pg_"):
        raise ConfigurationError(
            f"PostgreSQL schema name {name!r} must be lower-case letters, digits and "
            "underscores (at most 63, not starting with a digit or pg_)"
        )
    return name


def lock_key(purpose: str, schema: str | None) -> int:
    """The advisory lock (a signed 64-bit key) for ``purpose`` in ``schema``.

    Advisory locks are per database, so the key names the schema too: velvetrope
    installations in two schemas of one database never wait for each other.
    """
    digest = hashlib.sha256(f"velvetrope.{purpose}:{schema or ''}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def schema_version(conn: Connection) -> int:
    """The last migration applied, or 0 for a database (or schema) velvetrope never touched."""
    table = await conn.fetchval("SELECT to_regclass('schema_migrations')")
    if table is None:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))


def _check_not_newer(version: int) -> None:
    if version > len(MIGRATIONS):
        raise ConfigurationError(
            f"the database is at schema version {version}, newer than this velvetrope "
            f"({len(MIGRATIONS)}); upgrade velvetrope"
        )


async def migrate(conn: Connection, *, schema: str | None = None) -> tuple[int, int]:
    """Apply every migration newer than the database's version, under the advisory lock.

    A database already at the latest version is only read: no lock, no DDL.

    Args:
        conn: A connection whose ``search_path`` puts ``schema`` (if given) first.
        schema: The schema to create (if missing) and migrate; ``None`` for the first
            schema on the connection's search path (normally ``public``).

    Returns:
        The version before and after.

    Raises:
        ConfigurationError: The database is newer than this velvetrope knows.
    """
    found = await schema_version(conn)
    _check_not_newer(found)
    if found == len(MIGRATIONS):
        return found, found  # the usual start: nothing to do, no lock to queue on
    async with conn.transaction():
        # Held until commit: concurrent starters queue here, then read the version again.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key("migrate", schema))
        if schema is not None:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {check_schema_name(schema)}")
        await conn.execute(_VERSIONS_TABLE)
        current = await schema_version(conn)
        _check_not_newer(current)
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            await conn.execute(script)
            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
    return current, len(MIGRATIONS)
