"""Sign-outs reach every node's mint cache and subscribed services by push (HYB-06, HYB-07),
and the edge reads sessions past the near-cache, so it never waits for a push (HYB-15).

Two in-process nodes share Redis (sessions, the push channel) and SQLite; each runs its
gateway's background work. A service-side :class:`RevokedSessions` listens on the same
channel.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.postgres import ADMIN_URL, DisposableStores, require_postgres
from tests.support.redis import REDIS_URL, RedisTestStores, new_prefix, require_redis
from tests.support.services import PASSWORD, gateway_for, new_service
from velvetrope import AuthService, FrozenClock, PasswordHasher
from velvetrope.core.credentials import Presented
from velvetrope.core.gateway import INTERNAL_TYP, GatewayPolicy, validate_internal_claims
from velvetrope.core.ids import secret_digest
from velvetrope.core.principal import Principal
from velvetrope.core.tokens import codec
from velvetrope.errors import SessionInvalid, StoreUnavailable
from velvetrope.integrations import InternalClaims, RevokedSessions
from velvetrope.stores import CachedSessionStore, Stores
from velvetrope.stores.composite import CompositeStores
from velvetrope.stores.postgres import PostgresStores
from velvetrope.stores.redis import RedisStores
from velvetrope.stores.sqlite import SQLiteStores

ISSUER = "https://edge.example"
POLICY = GatewayPolicy(issuer=ISSUER, audiences=frozenset({"orders"}))


class Node:
    def __init__(self, service: AuthService, clock: FrozenClock) -> None:
        self.service = service
        self.gateway = gateway_for(service, POLICY, clock)


@pytest.fixture(params=["redis", "postgres"])
async def nodes(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock, hasher: PasswordHasher
) -> AsyncIterator[tuple[Node, Node, str]]:
    """Two nodes on Redis (+ SQLite) or on PostgreSQL alone; the third value says where a
    service subscribes (a Redis prefix, or ``postgres:<schema>``)."""
    first: Stores
    second: Stores
    if request.param == "redis":
        require_redis()
        path = tmp_path / "shared.db"
        prefix = new_prefix()
        first = RedisTestStores(SQLiteStores(path), RedisStores(REDIS_URL, prefix=prefix))
        second = CompositeStores(SQLiteStores(path), RedisStores(REDIS_URL, prefix=prefix))
    else:
        require_postgres()
        disposable = DisposableStores()
        first, second = disposable, PostgresStores(ADMIN_URL, schema=disposable.schema)
        prefix = f"postgres:{disposable.schema}"
    made = [Node(new_service(s, clock=clock, hasher=hasher), clock) for s in (first, second)]
    tasks = []
    for node in made:
        await node.service.start()
        await node.gateway.start()
        tasks.append(asyncio.create_task(node.gateway.run()))
    for node in made:  # every node hears the others before the test begins
        await until(lambda node=node: node.gateway.push_connected)  # type: ignore[misc]
    try:
        yield made[0], made[1], prefix
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await made[1].service.aclose()
        await made[0].service.aclose()  # last: it drops the test's data


def subscribe(revoked: RevokedSessions, where: str) -> asyncio.Task[None]:
    """Listen where the nodes push: their Redis prefix, or their PostgreSQL schema."""
    if where.startswith("postgres:"):
        schema = where.removeprefix("postgres:")
        return asyncio.create_task(revoked.listen_postgres(ADMIN_URL, schema=schema))
    return asyncio.create_task(revoked.listen_redis(REDIS_URL, prefix=where))


async def until(condition: Callable[[], bool]) -> None:
    """Wait for a push to land (bounded: a lost push fails the test)."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - state a push changes; bounded above
            await asyncio.sleep(0.005)


async def signed_in(node: Node) -> Principal:
    signed = await node.service.login("ann@example.com", PASSWORD)
    return await node.service.authenticate(signed.session.secret)


def verified(node: Node, token: str, clock: FrozenClock) -> InternalClaims:
    decoded = codec.decode_compact(token, node.gateway.tokens.keys.lookup, typ=INTERNAL_TYP)
    return validate_internal_claims(
        decoded.claims, issuer=ISSUER, audience="orders", now=clock(), leeway=timedelta(0)
    )


async def test_HYB_07_sign_out_on_one_node_empties_the_mint_cache_of_the_other(
    nodes: tuple[Node, Node, str],
) -> None:
    a, b, _ = nodes
    await a.service.register("ann@example.com", PASSWORD)
    principal = await signed_in(a)
    await a.gateway.token_for(principal, "orders")
    assert len(a.gateway.cache) == 1
    await b.service.logout(principal)
    await until(lambda: len(a.gateway.cache) == 0)


@pytest.mark.parametrize("how", ["sign-out", "device", "everywhere", "password", "disable"])
async def test_HYB_11_a_subscribed_service_refuses_the_revoked_sessions_tokens(
    nodes: tuple[Node, Node, str], clock: FrozenClock, how: str
) -> None:
    a, b, prefix = nodes
    user = await a.service.register("ann@example.com", PASSWORD)
    revoked = RevokedSessions(now=clock)
    listener = subscribe(revoked, prefix)
    try:
        async with asyncio.timeout(5):
            await revoked.wait_connected()
        principal = await signed_in(a)
        claims = verified(a, (await a.gateway.token_for(principal, "orders")).token, clock)
        assert not revoked.is_revoked(claims)
        clock.advance(timedelta(milliseconds=10))
        if how == "sign-out":
            await b.service.logout(principal)
        elif how == "device":
            await b.service.end_device(user.id, principal.handle)
        elif how == "everywhere":
            await b.service.sign_out_everywhere(user.id)
        elif how == "password":
            other = await signed_in(b)
            assert other.session is not None
            await b.service.change_password(
                other, None, PASSWORD, "another correct horse battery staple"
            )
        else:
            await b.service.disable_user(user.id)
        await until(lambda: revoked.is_revoked(claims))
        # Node a hears the push on its own connection: it may land after the service's.
        await until(lambda: len(a.gateway.cache) == 0)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


async def test_HYB_11_a_user_cut_off_spares_tokens_minted_after_it(
    nodes: tuple[Node, Node, str], clock: FrozenClock
) -> None:
    a, b, prefix = nodes
    user = await a.service.register("ann@example.com", PASSWORD)
    revoked = RevokedSessions(now=clock)
    listener = subscribe(revoked, prefix)
    try:
        async with asyncio.timeout(5):
            await revoked.wait_connected()
        old = await signed_in(a)
        before = verified(a, (await a.gateway.token_for(old, "orders")).token, clock)
        clock.advance(timedelta(seconds=1))
        await b.service.sign_out_everywhere(user.id)
        await until(lambda: revoked.is_revoked(before))
        clock.advance(timedelta(seconds=1))
        fresh = await signed_in(a)
        after = verified(a, (await a.gateway.token_for(fresh, "orders")).token, clock)
        assert not revoked.is_revoked(after)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


def near_cached(node: Node) -> CachedSessionStore:
    store = node.service.stores.sessions
    assert isinstance(store, CachedSessionStore)
    return store


async def test_HYB_15_the_edge_reads_the_session_past_the_near_cache(
    nodes: tuple[Node, Node, str],
) -> None:
    a, b, _ = nodes
    await a.service.register("ann@example.com", PASSWORD)
    secret = (await a.service.login("ann@example.com", PASSWORD)).session.secret
    await a.gateway.authenticate(Presented(secret))
    await a.service.authenticate(secret)  # now in a's near-cache
    # Another node ends the session and its push has not landed here yet: the record is
    # deleted from the shared store directly, which publishes nothing.
    assert await near_cached(b).inner.delete(secret_digest(secret))
    assert (await a.service.authenticate(secret)).session is not None  # a stale near-cache
    with pytest.raises(SessionInvalid):
        await a.gateway.authenticate(Presented(secret))
    with pytest.raises(SessionInvalid):  # the fresh read dropped the stale entry too
        await a.service.authenticate(secret)


async def test_HYB_15_a_store_outage_fails_closed_at_the_edge_even_with_the_session_cached(
    nodes: tuple[Node, Node, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _, _ = nodes
    await a.service.register("ann@example.com", PASSWORD)
    secret = (await a.service.login("ann@example.com", PASSWORD)).session.secret
    await a.service.authenticate(secret)  # now in a's near-cache

    async def down(_: str) -> None:
        raise StoreUnavailable("the test stopped answering")

    monkeypatch.setattr(near_cached(a).inner, "get", down)
    assert (await a.service.authenticate(secret)).session is not None  # served from the cache
    with pytest.raises(StoreUnavailable):
        await a.gateway.authenticate(Presented(secret))


@pytest.mark.parametrize("how", ["family", "everywhere"])
async def test_HYB_14_a_token_callers_mints_leave_every_node_when_its_family_ends(
    nodes: tuple[Node, Node, str], clock: FrozenClock, how: str
) -> None:
    a, b, prefix = nodes
    user = await a.service.register("ann@example.com", PASSWORD)
    revoked = RevokedSessions(now=clock)
    listener = subscribe(revoked, prefix)
    try:
        async with asyncio.timeout(5):
            await revoked.wait_connected()
        pair = await a.service.token_login("ann@example.com", PASSWORD)
        principal = await a.service.token_strategy.authenticate(
            Presented(pair.access_token), method="gateway"
        )
        claims = verified(a, (await a.gateway.token_for(principal, "orders")).token, clock)
        assert claims.sid == pair.family.id
        assert len(a.gateway.cache) == 1
        clock.advance(timedelta(milliseconds=10))
        if how == "family":
            await b.service.tokens.revoke_family(pair.family.id)
        else:
            await b.service.sign_out_everywhere(user.id)
        await until(lambda: len(a.gateway.cache) == 0)
        await until(lambda: revoked.is_revoked(claims))
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
