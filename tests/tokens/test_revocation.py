"""Revocation state across processes sharing one store, and its fast path.

Every backend for the tests on the ``service`` fixture: the revocation feed and the key
ring are read back from the store.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.services import (
    ORIGIN,
    PASSWORD,
    TOKEN_POLICY,
    started_service,
)
from tests.support.stores import every_backend
from velvetrope import AuthService, FrozenClock, MemoryStores, PasswordHasher, TokenPolicy
from velvetrope.errors import InvalidToken

pytestmark = every_backend  # revocations and keys are shared through the store


async def test_TERM_02_revocations_made_elsewhere_arrive_with_the_next_sync(
    nodes: tuple[AuthService, AuthService],
) -> None:
    """Two processes on one SQLite file: the CLI (B) disables a user the server (A) serves."""
    server, cli = nodes
    user = await server.register("ann@example.com", PASSWORD)
    pair = await server.token_login("ann@example.com", PASSWORD)
    await server.authenticate_bearer(pair.access_token)  # now cached on the server
    await cli.disable_user(user.id)
    await server.tokens.sync()
    with pytest.raises(InvalidToken):
        await server.authenticate_bearer(pair.access_token)


async def test_a_key_rotated_elsewhere_verifies_and_signs_after_sync(
    nodes: tuple[AuthService, AuthService], clock: FrozenClock
) -> None:
    server, cli = nodes
    await server.register("ann@example.com", PASSWORD)
    old = await server.token_login("ann@example.com", PASSWORD)
    new_key = await cli.tokens.keys.rotate()
    from_cli = await cli.token_login("ann@example.com", PASSWORD)
    # unknown kid: the server reloads its ring (rate-limited) and accepts it
    clock.advance(timedelta(seconds=10))
    await server.authenticate_bearer(from_cli.access_token)
    await server.tokens.sync()
    assert server.tokens.keys.signing_key.kid == new_key.kid
    await server.authenticate_bearer(old.access_token)  # the old key still verifies


async def test_a_key_added_elsewhere_just_after_this_node_loaded_verifies_at_once(
    nodes: tuple[AuthService, AuthService],
) -> None:
    """Nodes starting together: B loads its ring, then A adds a newer key and signs with
    it. B's first sight of that kid must reload the ring, not wait out an interval that
    its own start-up load began (a 401 for a valid token seen in the multi-node test)."""
    node_b, node_a = nodes
    await node_a.register("ann@example.com", PASSWORD)
    await node_a.tokens.keys.rotate()  # a key B has never seen, no time passing
    pair = await node_a.token_login("ann@example.com", PASSWORD)
    principal = await node_b.authenticate_bearer(pair.access_token)
    assert principal.user_id == pair.family.user_id


async def test_JWT_04_unknown_kids_reload_the_ring_at_most_once_per_interval(
    service: AuthService,
) -> None:
    calls = 0
    original = service.stores.keys.list_keys

    async def counting(purpose: str):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return await original(purpose)

    service.stores.keys.list_keys = counting  # type: ignore[method-assign]
    for n in range(50):
        assert not await service.tokens.keys.refresh_if_unknown(f"unknown-kid-{n}")
    assert calls <= 1


async def test_user_cutoff_spares_tokens_issued_after_it(
    service: AuthService, clock: FrozenClock
) -> None:
    user = await service.register("ann@example.com", PASSWORD)
    before = await service.token_login("ann@example.com", PASSWORD)
    clock.advance(timedelta(seconds=1))
    await service.tokens.revoke_user(user.id)
    clock.advance(timedelta(seconds=1))
    after = await service.token_login("ann@example.com", PASSWORD)
    with pytest.raises(InvalidToken):
        await service.authenticate_bearer(before.access_token)
    await service.authenticate_bearer(after.access_token)


async def test_revocation_entries_are_forgotten_once_the_tokens_they_cover_are_dead(
    service: AuthService, clock: FrozenClock
) -> None:
    await service.register("ann@example.com", PASSWORD)
    pair = await service.token_login("ann@example.com", PASSWORD)
    await service.tokens.revoke_token(pair.access_token)
    assert service.tokens.revocations._jtis
    clock.advance(TOKEN_POLICY.access_ttl + TOKEN_POLICY.leeway + timedelta(seconds=1))
    await service.tokens.maintain()
    await service.tokens.sync()
    assert not service.tokens.revocations._jtis
    assert await service.stores.revocations.since(0) == []


async def test_the_verified_token_cache_is_bounded_and_evicts_oldest_first(
    clock: FrozenClock, hasher: PasswordHasher
) -> None:
    small = TokenPolicy(issuer=ORIGIN, audience=ORIGIN, cache_size=50)
    node = await started_service(MemoryStores(), clock=clock, hasher=hasher, token_policy=small)
    access = node.tokens.access
    user = await node.register("ann@example.com", PASSWORD)
    pair = await node.token_login("ann@example.com", PASSWORD)
    access._cache.clear()
    tokens = [access.issue(user_id=user.id, family_id=pair.family.id).token for _ in range(55)]
    for token in tokens:
        await access.verify(token)
    assert len(access._cache) == 50
    assert tokens[0] not in access._cache
    assert tokens[-1] in access._cache
    await access.verify(tokens[0])  # an evicted token still verifies, the slow way
