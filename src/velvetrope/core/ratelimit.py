"""Login throttling (PW-07): exponential back-off per account, a ceiling per client address.

Per account (keyed by the normalised email, known or not, so throttling reveals
nothing about which accounts exist): the first ``free_failures`` failures cost
nothing; after that each further attempt must wait ``base_delay * 2**k``, capped at
``max_delay``. The lock is never permanent: a correct password after the wait signs
in and clears the count. Per address: at most ``per_ip_failures`` failures in any
``per_ip_window``; past it, that address waits for the window to end.

Each limit is one compare-and-count in the store (RES-01), so the count is exact
however many nodes share it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from velvetrope.errors import TooManyAttempts
from velvetrope.stores.protocols import ThrottleStore

__all__ = ["Admission", "LoginThrottle", "ThrottlePolicy"]


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


@dataclass(frozen=True, slots=True)
class Admission:
    """A sign-in attempt :meth:`LoginThrottle.admit` let through.

    Attributes:
        failures: The account's count, this attempt included.
        ip_run: The start of the address's run this attempt holds a place in, to
            give back after a success (``None`` without an address).
    """

    failures: int
    ip_run: datetime | None = None


class LoginThrottle:
    """Checks and counts sign-in attempts in a :class:`ThrottleStore`, atomically.

    Every limit is a compare-and-count in the store (:meth:`ThrottleStore.count_if`),
    so any number of nodes racing on one account or one address admit between them
    exactly what one node alone would: no check-then-count gap to slip through.
    """

    def __init__(self, store: ThrottleStore, policy: ThrottlePolicy | None = None) -> None:
        self._store = store
        self.policy = policy or ThrottlePolicy()

    @staticmethod
    def _account_key(email: str) -> str:
        return "acct:" + hashlib.sha256(email.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    @staticmethod
    def _ip_key(ip: str) -> str:
        return "ip:" + ip

    async def admit(self, email: str, ip: str, now: datetime) -> Admission:
        """Count this attempt against the address and the account, before the hash.

        The address's place is taken first (refused past ``per_ip_failures`` in its
        window), then the account's: one of the ``free_failures``, or after them the
        single attempt its back-off allows next, which only one racer can take. An
        attempt the account refuses gives the address its place back, and so does
        a success (:meth:`succeeded`): successful sign-ins from a shared address (an
        office, a proxy) never use up its allowance. A success clears the account.

        Raises:
            TooManyAttempts: With ``retry_after`` set.
        """
        ip_run = await self._take_ip(ip, now) if ip else None
        try:
            failures = await self._take_account(self._account_key(email), now)
        except TooManyAttempts:
            if ip_run is not None:
                await self._store.release(self._ip_key(ip), first_at=ip_run)
            raise
        return Admission(failures, ip_run)

    async def _take_ip(self, ip: str, now: datetime) -> datetime:
        window = self.policy.per_ip_window
        key = self._ip_key(ip)
        record = await self._store.count_if(
            key, now, window_start=now - window, limit=self.policy.per_ip_failures
        )
        if record is None:
            current = await self._store.get(key)
            raise TooManyAttempts(window if current is None else current.first_at + window - now)
        return record.first_at

    async def _take_account(self, key: str, now: datetime) -> int:
        window_start = now - self.policy.account_window
        retry_after = self.policy.delay_after(self.policy.free_failures)
        for _ in range(2):  # again once, should a success clear the run in between
            record = await self._store.count_if(
                key, now, window_start=window_start, limit=self.policy.free_failures
            )
            if record is not None:
                return record.count
            current = await self._store.get(key)
            if current is None:
                continue
            wait = current.last_at + self.policy.delay_after(current.count) - now
            if wait > timedelta(0):
                raise TooManyAttempts(wait)
            # The back-off is over: admit one more, only if no racer took it first.
            record = await self._store.count_if(
                key, now, window_start=window_start, limit=current.count + 1
            )
            if record is not None:
                return record.count
            # A racer took the one attempt the back-off allowed: wait as it makes the next.
            retry_after = self.policy.delay_after(current.count + 1)
            break
        raise TooManyAttempts(retry_after)

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
        window = self.policy.registration_window
        record = await self._store.count_if(
            key, now, window_start=now - window, limit=self.policy.registrations_per_ip
        )
        if record is None:
            current = await self._store.get(key)
            raise TooManyAttempts(
                window if current is None else current.first_at + window - now,
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

    async def succeeded(self, email: str, ip: str, admission: Admission) -> None:
        """Clear the account's count and give the address back the place the attempt held."""
        await self._store.clear(self._account_key(email))
        if ip and admission.ip_run is not None:
            await self._store.release(self._ip_key(ip), first_at=admission.ip_run)
