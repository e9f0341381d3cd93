"""Login throttling: PW-07."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.services import PASSWORD
from velvetrope import AuthService, FrozenClock, ThrottlePolicy
from velvetrope.errors import InvalidCredentials, TooManyAttempts
from velvetrope.stores import Stores


async def fail_once(service: AuthService, email: str, ip: str = "198.51.100.1") -> None:
    with pytest.raises(InvalidCredentials):
        await service.users.authenticate(email, "definitely the wrong one", ip=ip)


async def test_PW_07_101_failures_are_throttled_and_backoff_is_not_a_permanent_lock(
    service: AuthService, clock: FrozenClock
) -> None:
    email = (await service.register("ann@example.com", PASSWORD)).email
    policy = service.users.throttle.policy
    throttled = 0
    for _ in range(101):
        try:
            await fail_once(service, email)
        except TooManyAttempts as exc:
            throttled += 1
            clock.advance(exc.retry_after)
            await fail_once(service, email)
    assert throttled >= 101 - policy.free_failures - 1
    with pytest.raises(TooManyAttempts) as caught:
        await service.login(email, PASSWORD)  # even the right password waits its turn
    assert timedelta(0) < caught.value.retry_after <= policy.max_delay
    clock.advance(caught.value.retry_after)
    await service.login(email, PASSWORD)  # after the back-off, the owner gets in
    await fail_once(service, email)  # and the count started over
    await fail_once(service, email)


async def test_PW_07_backoff_doubles_up_to_the_cap() -> None:
    policy = ThrottlePolicy(free_failures=5, max_delay=timedelta(minutes=15))
    assert policy.delay_after(4) == timedelta(0)
    assert policy.delay_after(5) == timedelta(seconds=1)
    assert policy.delay_after(6) == timedelta(seconds=2)
    assert policy.delay_after(10) == timedelta(seconds=32)
    assert policy.delay_after(100) == timedelta(minutes=15)
    assert policy.delay_after(10**9) == timedelta(minutes=15)


async def test_PW_07_unknown_emails_are_throttled_like_known_ones(
    service: AuthService,
) -> None:
    """Throttling must not reveal which accounts exist."""
    await service.register("ann@example.com", PASSWORD)
    outcomes = []
    for email in ("ann@example.com", "nobody@example.com"):
        for _ in range(5):
            await fail_once(service, email)
        with pytest.raises(TooManyAttempts) as caught:
            await fail_once(service, email)
        outcomes.append(caught.value.retry_after)
    assert outcomes[0] == outcomes[1]


async def test_PW_07_per_address_ceiling_across_many_accounts(
    stores: Stores, clock: FrozenClock, service: AuthService
) -> None:
    limited = AuthService(
        stores,
        hasher=service.users.hasher,
        throttle_policy=ThrottlePolicy(per_ip_failures=10, per_ip_window=timedelta(minutes=15)),
        now=clock,
    )
    for n in range(10):
        await fail_once(limited, f"user{n}@example.com", ip="198.51.100.9")
    with pytest.raises(TooManyAttempts) as caught:
        await fail_once(limited, "fresh@example.com", ip="198.51.100.9")
    assert caught.value.retry_after == timedelta(minutes=15)
    await fail_once(limited, "fresh@example.com", ip="198.51.100.10")  # other addresses are fine
    clock.advance(timedelta(minutes=15, seconds=1))
    await fail_once(limited, "fresh@example.com", ip="198.51.100.9")  # the window ended


async def test_success_clears_the_account_count(service: AuthService) -> None:
    email = (await service.register("ann@example.com", PASSWORD)).email
    for _ in range(4):
        await fail_once(service, email)
    await service.login(email, PASSWORD)
    for _ in range(5):
        await fail_once(service, email)  # five fresh free failures again
