"""Races and abuse found in review: each test pins one fixed hole.

Every backend: a concurrent guess, a grant in flight during a password change, a
store that goes away; whether the hole stays shut depends on each store's atomicity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.services import (
    PASSWORD,
    SESSION_POLICY,
    TOKEN_POLICY,
    new_service,
    started_service,
)
from tests.support.stores import every_backend
from velvetrope import (
    AuthService,
    FrozenClock,
    PasswordHasher,
    SessionPolicy,
    ThrottlePolicy,
)
from velvetrope.core.passwords import Verification
from velvetrope.errors import (
    InvalidCredentials,
    SessionInvalid,
    StoreUnavailable,
    TooManyAttempts,
)
from velvetrope.stores import MemoryStores, SQLiteStores, Stores

pytestmark = every_backend  # races are won or lost in the store


async def test_PW_07_concurrent_guesses_cannot_outrun_the_throttle(service: AuthService) -> None:
    await service.register("ann@example.com", PASSWORD)
    outcomes = await asyncio.gather(
        *(service.login("ann@example.com", f"wrong guess number {n:03d}") for n in range(40)),
        return_exceptions=True,
    )
    throttled = sum(isinstance(o, TooManyAttempts) for o in outcomes)
    wrong = sum(isinstance(o, InvalidCredentials) for o in outcomes)
    assert wrong == service.users.throttle.policy.free_failures
    assert throttled == 40 - wrong


async def test_PW_07_concurrent_failures_cannot_outrun_the_address_ceiling(
    stores: Stores, clock: FrozenClock, hasher: PasswordHasher
) -> None:
    """The address's place is taken before the hash, in one store step: forty guesses
    in flight at once from one address, each at a different account, get ten hashes."""
    service = await started_service(
        stores,
        clock=clock,
        hasher=hasher,
        throttle_policy=ThrottlePolicy(per_ip_failures=10),
    )
    outcomes = await asyncio.gather(
        *(
            service.users.authenticate(f"user{n}@example.com", "wrong", ip="198.51.100.7")
            for n in range(40)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(o, InvalidCredentials) for o in outcomes) == 10
    assert sum(isinstance(o, TooManyAttempts) for o in outcomes) == 30


async def test_PW_07_a_success_gives_the_address_its_place_back(
    stores: Stores, clock: FrozenClock, hasher: PasswordHasher
) -> None:
    service = await started_service(
        stores,
        clock=clock,
        hasher=hasher,
        throttle_policy=ThrottlePolicy(per_ip_failures=3),
    )
    await service.register("ann@example.com", PASSWORD)
    for _ in range(5):  # successes from a shared address use up nothing
        await service.users.authenticate("ann@example.com", PASSWORD, ip="198.51.100.8")
    for n in range(3):
        with pytest.raises(InvalidCredentials):
            await service.users.authenticate(f"u{n}@example.com", "wrong", ip="198.51.100.8")
    with pytest.raises(TooManyAttempts):
        await service.users.authenticate("ann@example.com", PASSWORD, ip="198.51.100.8")


def _pause_hashing(
    monkeypatch: pytest.MonkeyPatch,
    service: AuthService,
    meanwhile: Callable[[], Awaitable[object]],
) -> None:
    """Run ``meanwhile`` while the next password verification is in flight."""
    hasher = service.users.hasher
    original = hasher.verify

    async def verify(stored: str | None, password: str) -> Verification:
        result = await original(stored, password)
        await meanwhile()
        return result

    monkeypatch.setattr(hasher, "verify", verify)


async def test_TERM_04_a_sign_in_in_flight_when_the_account_is_disabled_gets_nothing(
    service: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await service.register("ann@example.com", PASSWORD)

    async def disable() -> None:
        await service.disable_user(user.id)

    _pause_hashing(monkeypatch, service, disable)
    with pytest.raises(InvalidCredentials):
        await service.login("ann@example.com", PASSWORD)
    assert await service.sessions.list(user.id) == []


async def test_TERM_03_a_token_grant_in_flight_during_a_password_change_gets_nothing(
    service: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await service.register("ann@example.com", PASSWORD)

    async def change() -> None:
        await service.users.change_password(user, "the new passphrase of ann")

    _pause_hashing(monkeypatch, service, change)
    with pytest.raises(InvalidCredentials):
        await service.token_login("ann@example.com", PASSWORD)
    assert await service.tokens.refresh.list(user.id) == []


async def test_TERM_03_password_change_ends_everything_even_if_this_session_died(
    service: AuthService,
) -> None:
    await service.register("ann@example.com", PASSWORD)
    mine = (await service.login("ann@example.com", PASSWORD)).session.secret
    other = (await service.login("ann@example.com", PASSWORD)).session.secret
    principal = await service.authenticate(mine)
    await service.end_session_id(mine)  # e.g. evicted by the session limit meanwhile
    with pytest.raises(SessionInvalid):
        await service.change_password(principal, mine, PASSWORD, "the new passphrase of ann")
    with pytest.raises(SessionInvalid):
        await service.authenticate(other)


async def test_TERM_05_bearer_checks_fail_closed_when_revocations_cannot_be_read(
    tmp_path: Path, clock: FrozenClock, hasher: PasswordHasher
) -> None:
    node = await started_service(SQLiteStores(tmp_path / "vr.db"), clock=clock, hasher=hasher)
    await node.register("ann@example.com", PASSWORD)
    pair = await node.token_login("ann@example.com", PASSWORD)
    await node.authenticate_bearer(pair.access_token)
    await node.stores.aclose()  # the store goes away
    clock.advance(TOKEN_POLICY.revocation_staleness + timedelta(seconds=1))
    with pytest.raises(StoreUnavailable):
        await node.authenticate_bearer(pair.access_token)


async def test_SESS_13_dead_sessions_do_not_count_against_the_limit(
    clock: FrozenClock, hasher: PasswordHasher
) -> None:
    policy = SessionPolicy(
        idle_timeout=SESSION_POLICY.idle_timeout,
        absolute_lifetime=SESSION_POLICY.absolute_lifetime,
        max_per_user=2,
    )
    node = await started_service(MemoryStores(), clock=clock, hasher=hasher, session_policy=policy)
    await node.register("ann@example.com", PASSWORD)
    await node.login("ann@example.com", PASSWORD)  # will go idle
    clock.advance(SESSION_POLICY.idle_timeout)
    laptop = (await node.login("ann@example.com", PASSWORD)).session.secret
    await node.login("ann@example.com", PASSWORD)
    await node.authenticate(laptop)  # not evicted: the idle session did not count


async def test_sign_ups_are_limited_per_address(clock: FrozenClock, hasher: PasswordHasher) -> None:
    node = new_service(
        MemoryStores(),
        clock=clock,
        hasher=hasher,
        throttle_policy=ThrottlePolicy(registrations_per_ip=3),
    )
    for n in range(3):
        await node.register(f"user{n}@example.com", PASSWORD, ip="198.51.100.7")
    with pytest.raises(TooManyAttempts):
        await node.register("user9@example.com", PASSWORD, ip="198.51.100.7")
    await node.register("user9@example.com", PASSWORD, ip="198.51.100.8")
    clock.advance(timedelta(hours=1, seconds=1))
    await node.register("user10@example.com", PASSWORD, ip="198.51.100.7")


async def test_a_full_hashing_queue_asks_callers_to_retry() -> None:
    hasher = PasswordHasher("test-only", max_concurrency=1, max_waiting=2)
    results = await asyncio.gather(
        *(hasher.hash(f"password number {n:04d}") for n in range(12)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, TooManyAttempts)]
    assert refused
    assert all(r.retry_after == timedelta(seconds=1) for r in refused)
    assert len(refused) < 12


async def test_old_login_failure_counters_are_purged(
    service: AuthService, clock: FrozenClock
) -> None:
    with pytest.raises(InvalidCredentials):
        await service.login("nobody@example.com", "some wrong password", ip="198.51.100.1")
    clock.advance(timedelta(days=2))
    assert await service.users.throttle.purge(clock()) == 2  # the account and the address
