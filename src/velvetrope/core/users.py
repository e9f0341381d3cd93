"""Accounts: email normalisation, registration, credential checks, password changes.

Signing in never tells an unknown email from a wrong password (PW-08): both answer
:class:`~velvetrope.errors.InvalidCredentials`, and an unknown email still costs one
argon2 verification (of a dummy hash) so the timing matches too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Sequence

from email_validator import EmailNotValidError, validate_email

from velvetrope.clock import Clock, system_clock
from velvetrope.core.events import SecurityEvents
from velvetrope.core.ids import TokenSource, new_user_id
from velvetrope.core.passwords import PasswordHasher, PasswordPolicy
from velvetrope.core.ratelimit import LoginThrottle
from velvetrope.errors import (
    AccountDisabled,
    InvalidCredentials,
    InvalidEmail,
    TooManyAttempts,
    UserNotFound,
)
from velvetrope.stores.protocols import UserStore
from velvetrope.stores.records import UserRecord

__all__ = ["EMAIL_HANDLE_SECRET_NAME", "UserService", "email_handle", "normalize_email"]

EMAIL_HANDLE_SECRET_NAME = "email-handle-v1"  # noqa: S105 - the name under which the key is stored
HANDLE_KEY_BYTES = 32


def normalize_email(email: str) -> str:
    """Return the canonical form of ``email`` used for uniqueness and look-ups.

    Syntax is checked (RFC 5322 as practised, internationalised domains to IDNA),
    Unicode is normalised, and the whole address is lower-cased: ``Ann@Example.COM``
    and ``ann@example.com`` are one account.

    Raises:
        InvalidEmail: Not a valid address; the message says why.
    """
    try:
        # NFKC first: fullwidth and ASCII letters must not make two accounts.
        checked = validate_email(
            unicodedata.normalize("NFKC", email).strip(), check_deliverability=False
        )
    except EmailNotValidError as exc:
        raise InvalidEmail(f"The email address is not valid: {exc}") from exc
    return checked.normalized.lower()


def email_handle(email: str, key: bytes | None = None) -> str:
    """A short, stable tag for an email address, for logs and the security log.

    With ``key`` (the secret every node shares, see :meth:`UserService.use_secret`) it
    is ``HMAC-SHA256(key, email)``: without the key, a list of candidate addresses
    cannot be hashed and compared against it. Without ``key`` it is an unkeyed
    ``sha256`` (reversible with a word list), only for callers not yet given the key.

    Raises:
        ValueError: ``key`` is shorter than 32 bytes.
    """
    data = email.encode("utf-8", "surrogatepass")
    if key is None:
        return hashlib.sha256(data).hexdigest()[:12]
    if len(key) < HANDLE_KEY_BYTES:
        raise ValueError(f"the email handle key must be at least {HANDLE_KEY_BYTES} bytes")
    return hmac.new(key, data, hashlib.sha256).hexdigest()[:12]


class UserService:
    """Account operations over a :class:`UserStore`."""

    def __init__(
        self,
        store: UserStore,
        *,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        throttle: LoginThrottle,
        events: SecurityEvents,
        now: Clock = system_clock,
        token_bytes: TokenSource = secrets.token_bytes,
    ) -> None:
        self._store = store
        self.hasher = hasher
        self.policy = policy
        self.throttle = throttle
        self._events = events
        self._now = now
        self._token_bytes = token_bytes
        self._handle_key: bytes | None = None

    def use_secret(self, secret: bytes) -> None:
        """Key the address handles (:meth:`email_handle`) with ``secret``, stored in the
        key store under :data:`EMAIL_HANDLE_SECRET_NAME` so every node shares it (like
        the CSRF secret).

        Raises:
            ValueError: The secret is shorter than 32 bytes.
        """
        if len(secret) < HANDLE_KEY_BYTES:
            raise ValueError(f"the email handle key must be at least {HANDLE_KEY_BYTES} bytes")
        self._handle_key = secret

    def email_handle(self, email: str) -> str:
        """The handle of the (normalised) address ``email``: keyed once :meth:`use_secret`
        was called (see :func:`email_handle`)."""
        return email_handle(email, self._handle_key)

    async def register(self, email: str, password: str, *, ip: str = "") -> UserRecord:
        """Create an account.

        Raises:
            InvalidEmail: The address is not valid.
            WeakPassword: The password fails the policy.
            HashingBusy: The hashing queue is full, or the hash waited too long.
            TooManyAttempts: Too many sign-ups from ``ip`` lately.
            EmailTaken: The address is already registered.
        """
        normal = normalize_email(email)
        self.policy.check(password, email=normal)
        self.hasher.refuse_if_busy()  # before the address's sign-up is counted
        try:
            await self.throttle.registration(ip, self._now())
        except TooManyAttempts:
            self._events.emit("registration_throttled", ip=ip)
            raise
        user = UserRecord(
            id=new_user_id(self._token_bytes),
            email=normal,
            password_hash=await self.hasher.hash(password),
            created_at=self._now(),
        )
        await self._store.add(user)
        self._events.emit("user_registered", user=user.id)
        return user

    async def authenticate(self, email: str, password: str, *, ip: str = "") -> UserRecord:
        """Return the user whose email and password these are.

        Raises:
            HashingBusy: The hashing queue is full (checked first), or this check waited
                too long for a worker.
            TooManyAttempts: The account or address is throttled (checked before hashing).
            InvalidCredentials: Unknown email or wrong password, indistinguishably.
            AccountDisabled: Right password, but the account is disabled.
        """
        try:
            normal = normalize_email(email)
        except InvalidEmail:
            raise InvalidCredentials from None
        # A full hashing queue refuses before the throttle counts: a flood's shed
        # attempts cost no store writes, and count against no account or address.
        self.hasher.refuse_if_busy()
        try:
            admission = await self.throttle.admit(normal, ip, self._now())
        except TooManyAttempts:
            self._events.emit("login_throttled", email=self.email_handle(normal), ip=ip)
            raise
        user = await self._store.get_by_email(normal)
        result = await self.hasher.verify(None if user is None else user.password_hash, password)
        if user is None or not result.ok:
            # A wrong password for an existing account is that user's event: kept in
            # full, never in the anonymous budget a flood of noise could spend first.
            known = {} if user is None else {"user": user.id}
            self._events.emit(
                "login_failed",
                **known,
                email=self.email_handle(normal),
                ip=ip,
                failures=admission.failures,
                reason="invalid_credentials",
            )
            raise InvalidCredentials
        await self.throttle.succeeded(normal, ip, admission)
        if user.disabled:
            self._events.emit("login_failed", user=user.id, ip=ip, reason="account_disabled")
            raise AccountDisabled
        if result.new_hash is not None:
            await self._store.set_password_hash(user.id, result.new_hash)
            self._events.emit("password_rehashed", user=user.id)
            return dataclasses.replace(user, password_hash=result.new_hash)
        return user

    async def verify_password(self, user_id: str, password: str, *, ip: str = "") -> UserRecord:
        """Re-check the password of a signed-in user (re-authentication, TIME-05).

        Raises:
            UserNotFound: The account is gone.
            TooManyAttempts, InvalidCredentials, AccountDisabled: As for sign-in.
        """
        user = await self._store.get(user_id)
        if user is None:
            raise UserNotFound
        return await self.authenticate(user.email, password, ip=ip)

    async def change_password(self, user: UserRecord, new_password: str) -> None:
        """Set a new password for ``user`` (who has just proven the current one).

        Raises:
            WeakPassword: The new password fails the policy.
        """
        self.policy.check(new_password, email=user.email)
        await self._store.set_password_hash(user.id, await self.hasher.hash(new_password))
        self._events.emit("password_changed", user=user.id)

    async def get(self, user_id: str) -> UserRecord:
        """Return the user with this id.

        Raises:
            UserNotFound: There is none.
        """
        user = await self._store.get(user_id)
        if user is None:
            raise UserNotFound
        return user

    async def find(self, email_or_id: str) -> UserRecord:
        """Return the user named by email address or by id (for operators' tools).

        Raises:
            UserNotFound: There is none.
        """
        if "@" in email_or_id:
            user = await self._store.get_by_email(normalize_email(email_or_id))
        else:
            user = await self._store.get(email_or_id)
        if user is None:
            raise UserNotFound(f"No user {email_or_id!r}.")
        return user

    async def set_disabled(self, user_id: str, *, disabled: bool) -> None:
        """Disable or re-enable an account (ending sessions is the caller's job)."""
        await self._store.set_disabled(user_id, disabled)
        self._events.emit("user_disabled" if disabled else "user_enabled", user=user_id)

    async def list(self, *, limit: int = 100, offset: int = 0) -> Sequence[UserRecord]:
        """Return accounts in creation order."""
        return await self._store.list(limit=limit, offset=offset)
