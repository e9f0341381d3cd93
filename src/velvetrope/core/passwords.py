"""Password hashing (argon2id) off the event loop, and the password policy.

Hashing parameters are named profiles (PW-01). The default, argon2-cffi's
``RFC_9106_LOW_MEMORY`` (m=64 MiB, t=3, p=4), is above the OWASP floor; ``TEST_ONLY``
is deliberately cheap and cannot be chosen from settings, only from Python.
Hashing runs on worker threads of its own at a lower CPU priority, behind a bounded
queue with a wait limit (:mod:`velvetrope.core.hashing`), so a burst of sign-ins is
shed with a 503 instead of stalling authenticated traffic.
"""

from __future__ import annotations

import contextlib
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from importlib import resources
from typing import Literal, TypeVar

import argon2
from argon2 import PasswordHasher as _Argon2Hasher
from argon2 import profiles

from velvetrope.core.hashing import HashWorkers
from velvetrope.errors import WeakPassword

__all__ = [
    "PROFILES",
    "PasswordHasher",
    "PasswordPolicy",
    "ProfileName",
    "Verification",
    "normalize_password",
]

T = TypeVar("T")

ProfileName = Literal["rfc9106-low-memory", "owasp-minimum"]

PROFILES: dict[str, argon2.Parameters] = {
    "rfc9106-low-memory": profiles.RFC_9106_LOW_MEMORY,
    # OWASP's floor (m=19 MiB, t=2, p=1): for small machines that must hash quickly.
    "owasp-minimum": argon2.Parameters(
        type=argon2.Type.ID,
        version=19,
        salt_len=16,
        hash_len=32,
        time_cost=2,
        memory_cost=19 * 1024,
        parallelism=1,
    ),
    # Cheap on purpose; unreachable from settings. For test suites only.
    "test-only": profiles.CHEAPEST,
}


def normalize_password(password: str) -> str:
    """Return ``password`` in Unicode NFKC form, as NIST SP 800-63B asks.

    No case folding, trimming or truncation: every other character counts as typed.
    """
    return unicodedata.normalize("NFKC", password)


@dataclass(frozen=True, slots=True)
class Verification:
    """The result of checking a password.

    Attributes:
        ok: Whether the password matched.
        new_hash: A re-hash with the current parameters when the stored one is
            weaker (PW-03); ``None`` when no upgrade is needed or ``ok`` is false.
    """

    ok: bool
    new_hash: str | None = None


class PasswordHasher:
    """Argon2id hashing and verification in worker threads with a capacity limit."""

    def __init__(
        self,
        profile: str = "rfc9106-low-memory",
        *,
        max_concurrency: int = 2,
        max_waiting: int = 32,
        max_wait: timedelta = timedelta(seconds=2),
        nice: int = 19,
    ) -> None:
        """Create a hasher.

        Args:
            profile: A key of :data:`PROFILES`.
            max_concurrency: How many hashes may run at once; the rest wait their turn.
            max_waiting: How many may wait; past it, callers are told to retry (a flood
                of sign-ups or sign-ins cannot queue unbounded work).
            max_wait: How long a check may wait for a worker before it is refused.
            nice: How much lower the hashing threads' CPU priority is (Linux).

        See :class:`~velvetrope.core.hashing.HashWorkers`.
        """
        params = PROFILES[profile]
        self.profile = profile
        self._hasher = _Argon2Hasher.from_parameters(params)
        self.workers = HashWorkers(
            workers=max_concurrency, queue=max_waiting, max_wait=max_wait, nice=nice
        )
        # Verifying unknown emails against this keeps the timing of "no such user"
        # and "wrong password" alike (PW-08).
        self._dummy_hash = self._hasher.hash("velvetrope dummy password for timing")

    @property
    def parameters(self) -> argon2.Parameters:
        """The parameters new hashes get."""
        return argon2.extract_parameters(self._dummy_hash)

    def refuse_if_busy(self) -> None:
        """Refuse at once when a hash asked for now would be refused for a full queue,
        so a caller skips the work it does before hashing (see ``HashWorkers``).

        Raises:
            HashingBusy: Every worker is busy and the queue is full.
        """
        self.workers.refuse_if_full()

    async def _run(self, func: Callable[..., T], *args: object) -> T:
        return await self.workers.run(func, *args)

    def close(self) -> None:
        """Stop the hashing workers (the service's ``aclose`` does)."""
        self.workers.close()

    async def hash(self, password: str) -> str:
        """Return the PHC string for ``password`` (salt from the OS CSPRNG, 16 bytes).

        Raises:
            HashingBusy: Too many hashes are already waiting, or this one waited too long.
        """
        return await self._run(self._hasher.hash, normalize_password(password))

    async def verify(self, stored_hash: str | None, password: str) -> Verification:
        """Check ``password`` against ``stored_hash``.

        With ``stored_hash=None`` (unknown user) a dummy hash is verified instead, so the
        answer takes as long as for a real user, and is always a failure.

        Raises:
            HashingBusy: Too many hashes are already waiting, or this one waited too long.
        """
        return await self._run(self._verify_sync, stored_hash, normalize_password(password))

    def _verify_sync(self, stored_hash: str | None, password: str) -> Verification:
        target = self._dummy_hash if stored_hash is None else stored_hash
        try:
            self._hasher.verify(target, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            if stored_hash is not None and self._weaker(stored_hash):
                self._pad()  # a cheap old hash must not answer faster than a dummy (PW-08)
            return Verification(ok=False)
        if stored_hash is None:
            return Verification(ok=False)
        if self._hasher.check_needs_rehash(stored_hash):
            return Verification(ok=True, new_hash=self._hasher.hash(password))
        return Verification(ok=True)

    def _weaker(self, stored_hash: str) -> bool:
        try:
            return bool(self._hasher.check_needs_rehash(stored_hash))
        except (argon2.exceptions.InvalidHashError, ValueError):
            return True

    def _pad(self) -> None:
        with contextlib.suppress(argon2.exceptions.VerificationError):
            self._hasher.verify(self._dummy_hash, "velvetrope timing pad")


@cache
def _common_passwords() -> frozenset[str]:
    text = resources.files("velvetrope.core").joinpath("data/common-passwords.txt").read_text()
    return frozenset(line for line in text.splitlines() if line)


_FILLER = string.digits + string.punctuation + string.whitespace
_SEQUENCES = (
    "0123456789" * 8,
    "9876543210" * 8,
    "abcdefghijklmnopqrstuvwxyz" * 4,
    "qwertyuiopasdfghjklzxcvbnm" * 4,
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p" * 3,
)


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """What a new password must satisfy (PW-05, PW-06).

    Length is counted in Unicode code points of the password as sent, before any
    normalisation: exactly what the OpenAPI document's ``minLength``/``maxLength`` count,
    so a password the schema allows is never refused for its length and one it refuses
    is never accepted (NFKC can lengthen a password eighteenfold, or shorten it, which
    would make the two disagree). The rest of the checks, and hashing, use the NFKC
    form. There are no composition rules. A password is refused when it is, or is
    built around, one of the 10,000 most common passwords, a run of one or two
    characters, a keyboard or counting sequence, or the account's own email address.
    """

    min_length: int = 15
    max_length: int = 1024

    def __post_init__(self) -> None:
        if self.min_length < 8:
            raise ValueError("min_length must be at least 8 (NIST SP 800-63B)")
        if self.max_length < max(64, self.min_length):
            raise ValueError("max_length must allow at least 64 characters")

    def check(self, password: str, *, email: str = "") -> None:
        """Accept ``password`` or raise.

        Raises:
            WeakPassword: With a sentence saying what is wrong.
        """
        if len(password) < self.min_length:
            raise WeakPassword(f"The password must be at least {self.min_length} characters long.")
        if len(password) > self.max_length:
            raise WeakPassword(f"The password must be at most {self.max_length} characters long.")
        if self.guessable(password, email=email):
            raise WeakPassword(
                "This password is too common or too easy to guess; choose a longer phrase."
            )

    def guessable(self, password: str, *, email: str = "") -> bool:
        """Whether ``password`` is one the policy refuses whatever its length: common,
        built around a common one, a run of one or two characters, a keyboard or counting
        sequence, or the account's own address (compared in NFKC, case-folded)."""
        return self._is_guessable(normalize_password(password).casefold(), email.casefold())

    @staticmethod
    def _is_guessable(folded: str, email: str) -> bool:
        common = _common_passwords()
        core = folded.strip(_FILLER)
        if folded in common or core in common or len(set(folded)) <= 2:
            return True
        if any(folded in seq for seq in _SEQUENCES):
            return True
        local = email.partition("@")[0]
        return bool(email) and (core in {email, local} or folded.startswith(email))
