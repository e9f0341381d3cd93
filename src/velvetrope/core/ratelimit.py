"""Login throttling (PW-07): exponential back-off per account, a ceiling per client address.

Per account (keyed by the normalised email, known or not, so throttling reveals
nothing about which accounts exist): the first ``free_failures`` failures cost
nothing; after that each further attempt must wait ``base_delay * 2**k``, capped at
``max_delay``. The lock is never permanent: a correct password after the wait signs
in and clears the count. Per address: at most ``per_ip_failures`` failures in any
``per_ip_window``; past it, that address waits for the window to end.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta

from velvetrope.errors import TooManyAttempts
from velvetrope.stores.protocols import ThrottleStore
from velvetrope.stores.records import FailureRecord

__all__ = ["LoginThrottle", "ThrottlePolicy"]


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How hard failed sign-ins are throttled."""

    free_failures: int = 5
    base_delay: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(minutes=15)
    account_window: timedelta = timedelta(hours=24)
    per_ip_failures: int = 100
    per_ip_window: timedelta = timedelta(minutes=15)
    registrations_per_ip: int = 20
    registration_window: timedelta = timedelta(hours=1)

    def delay_after(self, failures: int) -> timedelta:
        """Return how long an account must wait after ``failures`` consecutive failures."""
        excess = failures - self.free_failures
        if excess < 0:
            return timedelta(0)
        if excess >= 30:  # 2**30 seconds is far past any sane cap
            return self.max_delay
        delay: timedelta = self.base_delay * (2**excess)
        return min(delay, self.max_delay)


class LoginThrottle:
    """Checks and records sign-in failures in a :class:`ThrottleStore`."""

    def __init__(self, store: ThrottleStore, policy: ThrottlePolicy | None = None) -> None:
        self._store = store
        self.policy = policy or ThrottlePolicy()
        # Per-account locks, dropped as soon as no attempt holds them.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @staticmethod
    def _account_key(email: str) -> str:
        return "acct:" + hashlib.sha256(email.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    @staticmethod
    def _ip_key(ip: str) -> str:
        return "ip:" + ip

    async def admit(self, email: str, ip: str, now: datetime) -> int:
        """Check the limits and count this attempt against the account, before the hash.

        A success clears the account's count afterwards. Counting first means
        concurrent guesses see each other: per account, check and count run under one
        lock in this process (network stores yield between the two calls), so across
        processes only the round trip between them is unguarded. The address is
        charged only for failures (:meth:`failed_from`), so successful sign-ins from a
        shared address (an office, a proxy) never use up its allowance; concurrent
        failures there are bounded by the hashing queue.

        Raises:
            TooManyAttempts: With ``retry_after`` set.
        """
        key = self._account_key(email)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            await self.check(email, ip, now)
            record = await self._store.record_failure(
                key, now, window_start=now - self.policy.account_window
            )
            return record.count

    async def failed_from(self, ip: str, now: datetime) -> None:
        """Charge a failed sign-in to the client address."""
        if ip:
            await self._store.record_failure(
                self._ip_key(ip), now, window_start=now - self.policy.per_ip_window
            )

    async def check(self, email: str, ip: str, now: datetime) -> None:
        """Refuse the attempt if the account or the address is throttled.

        Raises:
            TooManyAttempts: With ``retry_after`` set.
        """
        account = await self._store.get(self._account_key(email))
        if account is not None and account.first_at >= now - self.policy.account_window:
            wait = account.last_at + self.policy.delay_after(account.count) - now
            if wait > timedelta(0):
                raise TooManyAttempts(wait)
        if ip:
            by_ip = await self._store.get(self._ip_key(ip))
            if by_ip is not None and self._ip_blocked(by_ip, now):
                raise TooManyAttempts(by_ip.first_at + self.policy.per_ip_window - now)

    def _ip_blocked(self, record: FailureRecord, now: datetime) -> bool:
        in_window = record.first_at > now - self.policy.per_ip_window
        return in_window and record.count >= self.policy.per_ip_failures

    async def registration(self, ip: str, now: datetime) -> None:
        """Count a sign-up from ``ip``; refuse past ``registrations_per_ip`` per window.

        Every sign-up costs an argon2 hash, so an address cannot create accounts (or
        burn CPU) without limit.

        Raises:
            TooManyAttempts: The address signed up too often recently.
        """
        if not ip:
            return
        key = "reg:" + ip
        record = await self._store.record_failure(
            key, now, window_start=now - self.policy.registration_window
        )
        if record.count > self.policy.registrations_per_ip:
            raise TooManyAttempts(
                record.first_at + self.policy.registration_window - now,
                "Too many sign-ups from this address; try again later.",
            )

    async def purge(self, now: datetime) -> int:
        """Forget counters too old to throttle anything; for the periodic job."""
        horizon = max(
            self.policy.account_window,
            self.policy.per_ip_window,
            self.policy.max_delay,
            self.policy.registration_window,
        )
        return await self._store.purge_before(now - horizon)

    async def succeeded(self, email: str) -> None:
        """Clear the account's failures; the address's window runs its course."""
        await self._store.clear(self._account_key(email))
