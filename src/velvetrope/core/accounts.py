"""The account lifecycle by mail: password reset and email verification links.

A link carries a 256-bit secret (``new_secret``). The store keeps only its SHA-256,
as the key of a single-use entry in ``stores.one_time`` (put once, taken once, gone
at its deadline on every node), whose value names the user and a *stamp* of what the
link was issued against: the password hash (reset) or the address (verification).
Using a link takes the entry, so a second use finds nothing; the stamp is compared
with :func:`hmac.compare_digest`, so a link dies as soon as the password or the
address changes (another reset, a change on the account page).

Asking for a reset never says whether the address has an account (RESET-06): the
answer is the same, and the work too: the same look-up, the same two store writes
(an entry for an unknown address is written and never matches), and the mail is
queued (:class:`~velvetrope.core.outbox.MailOutbox`), never awaited. A reset ends
every session and token family of the user through the one "end everything" path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from velvetrope.clock import Clock, system_clock
from velvetrope.core.events import SecurityEvents
from velvetrope.core.hooks import AccountEvent, Hooks
from velvetrope.core.ids import TokenSource, is_well_formed_secret, new_secret, secret_digest
from velvetrope.core.mail import Mail
from velvetrope.core.outbox import MailOutbox
from velvetrope.core.users import UserService, normalize_email
from velvetrope.errors import AuthError, InvalidLink, MailUnavailable, TooManyAttempts, WeakPassword
from velvetrope.stores.protocols import OneTimeStore, UserStore
from velvetrope.stores.records import UserRecord

__all__ = ["AccountLifecycle", "AccountMailPolicy", "reset_path", "verify_path"]

_logger = logging.getLogger("velvetrope.mail")

Purpose = Literal["reset", "verify"]
reset_path = "/password/reset"
verify_path = "/email/verify"


@dataclass(frozen=True, slots=True)
class AccountMailPolicy:
    """Lifetimes and addresses of the links sent by mail.

    Attributes:
        origin: Where the links point (the public origin).
        reset_ttl: How long a reset link works (OWASP: short; 30 minutes).
        verify_ttl: How long a verification link works.
        cooldown: At most one mail of a kind per address (or user) this often.
        product: The name mails sign with.
    """

    origin: str = "http://127.0.0.1:8000"
    reset_ttl: timedelta = timedelta(minutes=30)
    verify_ttl: timedelta = timedelta(hours=24)
    cooldown: timedelta = timedelta(seconds=60)
    product: str = "velvetrope"

    def __post_init__(self) -> None:
        if not timedelta(minutes=1) <= self.reset_ttl <= timedelta(hours=24):
            raise ValueError("password_reset_ttl must be between 1 minute and 24 hours")
        if not timedelta(minutes=1) <= self.verify_ttl <= timedelta(days=7):
            raise ValueError("email_verification_ttl must be between 1 minute and 7 days")
        if not timedelta(0) <= self.cooldown <= timedelta(hours=1):
            raise ValueError("mail_cooldown must be between 0 and 1 hour")


def _stamp(purpose: Purpose, user: UserRecord) -> str:
    """What a link was issued against; it must still hold when the link is used."""
    held = user.password_hash if purpose == "reset" else user.email
    return hashlib.sha256(f"{purpose}:{held}".encode()).hexdigest()


def _key(purpose: Purpose, token: str) -> str:
    return f"{purpose}:{secret_digest(token)}"


class AccountLifecycle:
    """Issues and redeems the links of password reset and email verification."""

    def __init__(
        self,
        users: UserService,
        store: UserStore,
        one_time: OneTimeStore,
        outbox: MailOutbox,
        *,
        end_everything: Callable[[str], Awaitable[int]],
        policy: AccountMailPolicy | None = None,
        events: SecurityEvents | None = None,
        hooks: Hooks | None = None,
        now: Clock = system_clock,
        token_bytes: TokenSource = secrets.token_bytes,
    ) -> None:
        """Args:
        users: Password policy and hashing.
        store: The accounts.
        one_time: Where link digests live, single-use, until their deadline.
        outbox: Where mail goes.
        end_everything: Ends every session and token family of a user (a reset).
        policy: Link lifetimes, the origin, the cooldown.
        events: Where security events go.
        hooks: The application's account hooks: a reset runs ``password_changed``.
        now: The clock.
        token_bytes: The random source.
        """
        self._users = users
        self._store = store
        self._one_time = one_time
        self.outbox = outbox
        self._end_everything = end_everything
        self.policy = policy or AccountMailPolicy()
        self._events = events or SecurityEvents()
        self._hooks = hooks
        self._now = now
        self._token_bytes = token_bytes

    @property
    def mail_enabled(self) -> bool:
        """Whether links can be sent at all."""
        return self.outbox.enabled

    def _require_mail(self) -> None:
        if not self.outbox.enabled:
            raise MailUnavailable(
                "This server cannot send mail (VELVETROPE_SMTP_URL is not set).",
                reason="no mailer",
            )

    async def _cooled_down(self, key: str) -> bool:
        """Claim the cooldown slot ``key``; ``False`` if a mail went out too recently."""
        if self.policy.cooldown <= timedelta(0):
            return True
        now = self._now()
        return await self._one_time.put(
            f"cool:{key}", "1", now=now, expires_at=now + self.policy.cooldown
        )

    async def _issue(self, purpose: Purpose, user: UserRecord | None) -> str:
        """A new link secret whose digest is stored for ``user`` (for ``None``: a
        decoy entry that matches no account, so both cases write the same)."""
        token = new_secret(self._token_bytes)
        now = self._now()
        ttl = self.policy.reset_ttl if purpose == "reset" else self.policy.verify_ttl
        value = {"u": "", "s": ""} if user is None else {"u": user.id, "s": _stamp(purpose, user)}
        await self._one_time.put(
            _key(purpose, token), json.dumps(value), now=now, expires_at=now + ttl
        )
        return token

    async def request_password_reset(self, email: str, *, ip: str = "") -> None:
        """Mail a reset link if ``email`` has an enabled account; the same either way.

        Raises:
            InvalidEmail: Not an address at all (says nothing about accounts).
            MailUnavailable: This server cannot send mail (the same for every address).
        """
        self._require_mail()
        normal = normalize_email(email)
        user = await self._store.get_by_email(normal)
        if user is not None and user.disabled:
            user = None
        fresh = await self._cooled_down(f"reset:{self._users.email_handle(normal)}")
        token = await self._issue("reset", user)
        outcome = "unknown" if user is None else "sent" if fresh else "cooldown"
        self._events.emit(
            "password_reset_requested",
            email=self._users.email_handle(normal),
            ip=ip,
            outcome=outcome,
        )
        # The message is composed either way, so both cases do the same work.
        link = f"{self.policy.origin}{reset_path}?token={token}"
        minutes = int(self.policy.reset_ttl.total_seconds() // 60)
        text = (
            f"Someone asked to reset the password of your {self.policy.product} account "
            f"({normal}).\n\nTo choose a new password, open this link within {minutes} "
            f"minutes:\n\n{link}\n\nIt works once. Every device signed in to your account "
            "will be signed out.\n\nIf you did not ask for this, ignore this mail: your "
            "password stays as it is.\n"
        )
        mail = Mail(normal, f"Reset your {self.policy.product} password", text)
        if user is not None and fresh:
            self.outbox.submit(mail, purpose="password_reset", user=user.id)

    async def _redeem(self, purpose: Purpose, token: str) -> tuple[UserRecord, str, datetime]:
        """Take the link's entry and return its user, the raw entry and its deadline.

        Raises:
            InvalidLink: Malformed, unknown, used, expired, or the account changed.
        """
        if not is_well_formed_secret(token):
            raise self._refused(purpose, "malformed")
        now = self._now()
        raw = await self._one_time.take(_key(purpose, token), now)
        if raw is None:
            raise self._refused(purpose, "unknown, used or expired")
        entry = json.loads(raw)
        user = await self._store.get(entry["u"]) if entry["u"] else None
        if user is None or user.disabled:
            raise self._refused(purpose, "no such account")
        if not hmac.compare_digest(entry["s"], _stamp(purpose, user)):
            raise self._refused(purpose, "the account changed since the link was sent")
        ttl = self.policy.reset_ttl if purpose == "reset" else self.policy.verify_ttl
        return user, raw, now + ttl

    def _refused(self, purpose: Purpose, reason: str) -> InvalidLink:
        self._events.emit("link_refused", purpose=purpose, reason=reason)
        return InvalidLink(reason)

    async def reset_password(self, token: str, new_password: str, *, ip: str = "") -> UserRecord:
        """Set a new password with a reset link; end every session and token family.

        A new password the policy refuses leaves the link usable.

        Raises:
            InvalidLink: The link is not (or no longer) valid.
            WeakPassword: The new password fails the policy.
        """
        self._users.policy.check(new_password)  # before the link is spent
        user, raw, deadline = await self._redeem("reset", token)
        try:
            self._users.policy.check(new_password, email=user.email)
        except WeakPassword:
            await self._one_time.put(
                _key("reset", token), raw, now=self._now(), expires_at=deadline
            )
            raise
        await self._store.set_password_hash(user.id, await self._users.hasher.hash(new_password))
        ended = await self._end_everything(user.id)
        if user.email_verified_at is None:  # the link came by mail: the address works
            await self._store.set_email_verified(user.id, self._now())
        self._events.emit("password_reset", user=user.id, ip=ip, ended=ended)
        if self._hooks is not None:
            await self._hooks.emit(
                AccountEvent("password_changed", user.id, email=user.email, ip=ip)
            )
        text = (
            f"The password of your {self.policy.product} account ({user.email}) was just "
            "reset with a link sent to this address, and every device was signed out.\n\n"
            "If that was not you, reset it again at once and check the account's devices.\n"
        )
        self.outbox.submit(
            Mail(user.email, f"Your {self.policy.product} password was reset", text),
            purpose="password_reset_notice",
            user=user.id,
        )
        return user

    async def send_verification(
        self, user: UserRecord, *, wait: bool = False, cooldown: bool = True
    ) -> bool:
        """Mail ``user`` a link that verifies their address; ``False`` if it already is
        verified (nothing sent).

        Args:
            user: The account.
            wait: Send now and wait for the server's answer (a signed-in user asked),
                rather than queue it (at sign-up).
            cooldown: Count it against the per-user cooldown (the automatic mail at
                sign-up does not, so asking again at once works).

        Raises:
            MailUnavailable: No mailer, or (``wait``) the server did not take it.
            TooManyAttempts: A verification mail went out within the cooldown.
        """
        if user.email_verified_at is not None:
            return False
        self._require_mail()
        if cooldown and not await self._cooled_down(f"verify:{user.id}"):
            raise TooManyAttempts(
                self.policy.cooldown,
                "A verification mail was sent a moment ago; check your inbox, or ask "
                "again in a minute.",
            )
        token = await self._issue("verify", user)
        link = f"{self.policy.origin}{verify_path}?token={token}"
        hours = int(self.policy.verify_ttl.total_seconds() // 3600)
        within = f"{hours} hours" if hours >= 2 else "the next hour"
        text = (
            f"Please confirm that {user.email} is your address for {self.policy.product}.\n\n"
            f"Open this link within {within}:\n\n{link}\n\n"
            "If you did not create an account, ignore this mail.\n"
        )
        mail = Mail(user.email, f"Confirm your address for {self.policy.product}", text)
        self._events.emit("email_verification_requested", user=user.id)
        if wait:
            await self.outbox.deliver(mail, purpose="email_verification", user=user.id)
        else:
            self.outbox.submit(mail, purpose="email_verification", user=user.id)
        return True

    async def welcome(self, user: UserRecord) -> None:
        """Queue a verification link for an account just signed up (the sign-up route
        and page call it), if mail can be sent; a failure is logged and never fails the
        sign-up. Accounts made by operators or by code get none unless asked."""
        if not self.outbox.enabled:
            return
        try:
            await self.send_verification(user, cooldown=False)
        except AuthError as exc:
            _logger.error("verification mail for new user %s not queued: %s", user.id, exc.code)

    async def verify_email(self, token: str) -> UserRecord:
        """Mark the address verified with a verification link.

        Raises:
            InvalidLink: The link is not (or no longer) valid, or the address changed.
        """
        user, _, _ = await self._redeem("verify", token)
        if user.email_verified_at is None:
            await self._store.set_email_verified(user.id, self._now())
        self._events.emit("email_verified", user=user.id)
        return await self._users.get(user.id)
