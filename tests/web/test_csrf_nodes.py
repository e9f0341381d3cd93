"""Every node agrees on the CSRF secret (issue 4): through the database, or by configuration.

Two services (two "nodes") open the same SQLite file, the same PostgreSQL schema, or
the same SQLite file plus Redis prefix; a token one mints verifies on the other, over
HTTP too. ``VELVETROPE_CSRF_SECRET``, when given, is used instead of the database's,
and a bad value stops the start with a sentence.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from tests.support.postgres import ADMIN_URL, DisposableStores, require_postgres
from tests.support.redis import REDIS_URL, RedisTestStores, new_prefix, require_redis
from tests.support.services import ORIGIN, PASSWORD, new_service
from velvetrope import (
    AuthService,
    FrozenClock,
    PasswordHasher,
    Settings,
    Velvetrope,
    create_app,
)
from velvetrope.bootstrap import build_service
from velvetrope.core.csrf import CSRF_SECRET_NAME, CsrfTokens, session_binding
from velvetrope.settings import describe_validation_error
from velvetrope.stores import SQLiteStores, Stores
from velvetrope.stores.composite import CompositeStores
from velvetrope.stores.postgres import PostgresStores
from velvetrope.stores.redis import RedisStores

BINDING = session_binding("d" * 64)
SHARED = ["sqlite", "postgres", "redis"]


def open_pair(kind: str, tmp_path: Path) -> tuple[Stores, Callable[[], Stores]]:
    """The first node's stores, and how to open another node's on the same data."""
    if kind == "sqlite":
        path = tmp_path / "shared.db"
        return SQLiteStores(path), lambda: SQLiteStores(path)
    if kind == "postgres":
        require_postgres()
        first = DisposableStores()
        return first, lambda: PostgresStores(ADMIN_URL, schema=first.schema)
    require_redis()
    path = tmp_path / "shared.db"
    redis_first = RedisStores(REDIS_URL, prefix=new_prefix())
    first_composite = RedisTestStores(SQLiteStores(path), redis_first)
    return first_composite, lambda: CompositeStores(
        SQLiteStores(path), RedisStores(REDIS_URL, prefix=redis_first.prefix)
    )


def node(stores: Stores, clock: FrozenClock, hasher: PasswordHasher) -> AuthService:
    return new_service(stores, clock=clock, hasher=hasher)


@pytest.fixture(params=SHARED)
async def two_nodes(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock, hasher: PasswordHasher
) -> AsyncIterator[tuple[AuthService, AuthService, Callable[[], AuthService]]]:
    """Two started services on one database, and a way to open a third (not started)."""
    first_stores, another = open_pair(str(request.param), tmp_path)
    opened: list[AuthService] = []

    def more() -> AuthService:
        service = node(another(), clock, hasher)
        opened.append(service)
        return service

    a = node(first_stores, clock, hasher)
    b = more()
    await a.start()
    await b.start()
    try:
        yield a, b, more
    finally:
        for service in reversed(opened):
            await service.aclose()
        await a.aclose()  # last: the first node's stores drop the test's data


async def test_a_token_minted_on_one_node_verifies_on_the_other(
    two_nodes: tuple[AuthService, AuthService, Callable[[], AuthService]],
) -> None:
    a, b, _ = two_nodes
    assert b.csrf.verify(BINDING, a.csrf.issue(BINDING))
    assert a.csrf.verify(BINDING, b.csrf.issue(BINDING))
    assert not b.csrf.verify(session_binding("e" * 64), a.csrf.issue(BINDING))


async def test_a_node_started_later_or_restarted_agrees(
    two_nodes: tuple[AuthService, AuthService, Callable[[], AuthService]],
) -> None:
    a, b, more = two_nodes
    token = a.csrf.issue(BINDING)
    await b.aclose()
    later = more()
    await later.start()
    assert later.csrf.verify(BINDING, token)


async def test_nodes_starting_at_the_same_time_agree(
    tmp_path: Path, clock: FrozenClock, hasher: PasswordHasher
) -> None:
    """The first start stores the secret; a racing start must read the winner's."""
    require_postgres()
    first = DisposableStores()
    await first.start()  # the schema exists; the secret does not yet
    nodes = [node(PostgresStores(ADMIN_URL, schema=first.schema), clock, hasher) for _ in range(4)]
    try:
        await asyncio.gather(*(n.start() for n in nodes))
        token = nodes[0].csrf.issue(BINDING)
        assert all(n.csrf.verify(BINDING, token) for n in nodes)
    finally:
        for n in nodes:
            await n.aclose()
        await first.aclose()


async def test_the_secret_in_the_database_is_32_random_bytes(
    two_nodes: tuple[AuthService, AuthService, Callable[[], AuthService]],
) -> None:
    a, _, _ = two_nodes
    stored = await a.stores.keys.secret(CSRF_SECRET_NAME, "not-used-as-one-exists")
    raw = base64.b64decode(stored)
    assert len(raw) == 32
    assert CsrfTokens(raw).verify(BINDING, a.csrf.issue(BINDING))


@pytest.mark.parametrize("mode", ["session", "jwt-cookie"])
async def test_a_sign_in_on_one_node_passes_the_csrf_check_on_another(
    two_nodes: tuple[AuthService, AuthService, Callable[[], AuthService]], mode: str
) -> None:
    """Over HTTP: sign in through node A, sign out everywhere through node B."""
    a, b, _ = two_nodes
    await a.register("ann@example.com", PASSWORD)
    settings = Settings(
        database_url="memory://",
        public_origin=ORIGIN,
        browser_credentials="jwt-cookie" if mode == "jwt-cookie" else "session",
        _env_file=None,
    )
    apps = [create_app(velvetrope=Velvetrope(settings, service=s)) for s in (a, b)]
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN) for app in apps
    ]
    node_a, node_b = clients
    try:
        login = await node_a.post(
            "/auth/login",
            json={"email": "ann@example.com", "password": PASSWORD},
            headers={"Origin": ORIGIN},
        )
        assert login.status_code == 200, login.text
        cookie = "; ".join(f"{c.name}={c.value}" for c in node_a.cookies.jar)
        token = login.json()["csrf_token"]
        headers = {"Origin": ORIGIN, "Cookie": cookie}
        wrong = {"password": "not the password at all"}
        forged = await node_b.post(
            "/auth/reauth",
            json=wrong,
            headers={**headers, "X-CSRF-Token": "A" * 22 + "." + "A" * 43},
        )
        assert forged.status_code == 403
        # a token minted on B passes A's CSRF check (the wrong password is what fails then)
        minted_on_b = (await node_b.get("/auth/csrf", headers=headers)).json()["csrf_token"]
        checked_on_a = await node_a.post(
            "/auth/reauth", json=wrong, headers={**headers, "X-CSRF-Token": minted_on_b}
        )
        assert checked_on_a.status_code == 401, checked_on_a.text
        ended = await node_b.post("/auth/logout-all", headers={**headers, "X-CSRF-Token": token})
        assert ended.status_code == 204, ended.text
        await a.tokens.sync()  # what node A's revocation poll does within a second
        assert (await node_a.get("/auth/me", headers={"Cookie": cookie})).status_code == 401
    finally:
        for client in clients:
            await client.aclose()


# --- VELVETROPE_CSRF_SECRET ------------------------------------------------------------------


def b64(raw: bytes, *, urlsafe: bool = True, pad: bool = False) -> str:
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    return text if pad else text.rstrip("=")


async def from_settings(settings: Settings) -> AuthService:
    service = build_service(settings)
    await service.start()
    return service


def configured(database_url: str, secret: str | None) -> Settings:
    return Settings(
        database_url=database_url,
        public_origin=ORIGIN,
        csrf_secret=secret,
        password_hash_profile="owasp-minimum",
        _env_file=None,
    )


async def test_a_configured_secret_is_used(tmp_path: Path) -> None:
    raw = secrets.token_bytes(32)
    service = await from_settings(configured("memory://", b64(raw)))
    try:
        assert service.csrf.verify(BINDING, CsrfTokens(raw).issue(BINDING))
        assert CsrfTokens(raw).verify(BINDING, service.csrf.issue(BINDING))
    finally:
        await service.aclose()


async def test_a_configured_secret_wins_over_the_database_and_is_not_stored(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'nodes.db'}"
    secret = b64(secrets.token_bytes(32))
    from_db = await from_settings(configured(url, None))
    config_1 = await from_settings(configured(url, secret))
    config_2 = await from_settings(configured(f"sqlite:///{tmp_path / 'other.db'}", secret))
    from_db_2 = await from_settings(configured(url, None))
    try:
        token = config_1.csrf.issue(BINDING)
        assert config_2.csrf.verify(BINDING, token)  # same configuration, another database
        assert not from_db.csrf.verify(BINDING, token)  # the database's secret is another
        assert from_db_2.csrf.verify(BINDING, from_db.csrf.issue(BINDING))  # and unchanged
        stored = await from_db.stores.keys.secret(CSRF_SECRET_NAME, "unused")
        assert base64.b64decode(stored) != base64.urlsafe_b64decode(secret + "=")
    finally:
        for service in (from_db, config_1, config_2, from_db_2):
            await service.aclose()


def test_the_secret_is_read_from_the_environment_and_never_shown(
    no_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = secrets.token_bytes(48)
    monkeypatch.setenv("VELVETROPE_CSRF_SECRET", b64(raw))
    monkeypatch.setenv("VELVETROPE_DATABASE_URL", "memory://")
    settings = Settings(_env_file=None)
    assert settings.csrf_secret_bytes() == raw
    assert b64(raw) not in repr(settings)
    assert b64(raw) not in str(settings.model_dump())


@pytest.mark.parametrize(
    "encoded",
    [
        b64(bytes(range(32))),
        b64(bytes(range(32)), pad=True),
        b64(bytes(range(200, 232)), urlsafe=False, pad=True),  # + and / in the text
        "  " + b64(bytes(range(32))) + "\n",
        b64(bytes(64)),
    ],
    ids=["urlsafe", "urlsafe padded", "standard alphabet", "surrounding whitespace", "64 bytes"],
)
def test_good_secret_encodings_are_accepted(encoded: str) -> None:
    raw = configured("memory://", encoded).csrf_secret_bytes()
    assert raw is not None
    assert len(raw) >= 32


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "short",
        b64(bytes(31)),
        "!" * 60,
        "correct horse battery staple correct horse",
        b64(bytes(32)) + "!",
        "é" * 44,
    ],
    ids=["empty", "blank", "short", "31 bytes", "not base64", "a passphrase", "junk", "non-ascii"],
)
def test_bad_secrets_are_refused_at_settings_load_with_a_sentence(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        configured("memory://", value)
    sentence = describe_validation_error(caught.value)
    assert "VELVETROPE_CSRF_SECRET must be base64 of at least 32 random bytes" in sentence
    assert value.strip() == "" or value not in sentence  # the bad value is not echoed
