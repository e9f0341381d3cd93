"""The auth service: one object that wires users, passwords, throttling and sessions.

Web routes, the CLI and integrations talk to this; none of them touch stores.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from velvetrope.clock import Clock, system_clock
from velvetrope.core.events import SecurityEvents
from velvetrope.core.ids import TokenSource
from velvetrope.core.passwords import PasswordHasher, PasswordPolicy
from velvetrope.core.principal import Principal
from velvetrope.core.ratelimit import LoginThrottle, ThrottlePolicy
from velvetrope.core.sessions import IssuedSession, SessionPolicy, SessionService
from velvetrope.core.users import UserService
from velvetrope.errors import ReauthRequired, SessionInvalid
from velvetrope.settings import Settings
from velvetrope.stores import Stores, open_stores
from velvetrope.stores.records import UserRecord

__all__ = ["AuthService", "SignIn"]


@dataclass(frozen=True, slots=True)
class SignIn:
    """The outcome of a successful sign-in (or re-authentication)."""

    user: UserRecord
    session: IssuedSession


class AuthService:
    """Everything velvetrope does, independent of any web framework."""

    def __init__(
        self,
        stores: Stores,
        *,
        hasher: PasswordHasher | None = None,
        password_policy: PasswordPolicy | None = None,
        session_policy: SessionPolicy | None = None,
        throttle_policy: ThrottlePolicy | None = None,
        events: SecurityEvents | None = None,
        now: Clock = system_clock,
        token_bytes: TokenSource = secrets.token_bytes,
    ) -> None:
        self.stores = stores
        self.events = events or SecurityEvents()
        self.now = now
        self.users = UserService(
            stores.users,
            hasher=hasher or PasswordHasher(),
            policy=password_policy or PasswordPolicy(),
            throttle=LoginThrottle(stores.throttle, throttle_policy),
            events=self.events,
            now=now,
            token_bytes=token_bytes,
        )
        self.sessions = SessionService(
            stores.sessions, session_policy, events=self.events, now=now, token_bytes=token_bytes
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthService:
        """Open the configured stores and build the service.

        Raises:
            ConfigurationError: The database URL is not supported.
            StoreUnavailable: The database cannot be opened.
        """
        return cls(
            open_stores(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous),
            hasher=PasswordHasher(
                settings.password_hash_profile, max_concurrency=settings.password_hash_concurrency
            ),
            password_policy=PasswordPolicy(min_length=settings.password_min_length),
            session_policy=SessionPolicy(
                idle_timeout=settings.session_idle_timeout,
                absolute_lifetime=settings.session_absolute_lifetime,
                touch_interval=settings.session_touch_interval,
                max_per_user=settings.session_max_per_user,
                reauth_window=settings.reauth_window,
            ),
            throttle_policy=ThrottlePolicy(
                free_failures=settings.login_free_failures,
                max_delay=settings.login_max_delay,
                per_ip_failures=settings.login_ip_failures,
                per_ip_window=settings.login_ip_window,
            ),
        )

    async def register(self, email: str, password: str) -> UserRecord:
        """Create an account; see :meth:`UserService.register`."""
        return await self.users.register(email, password)

    async def login(
        self,
        email: str,
        password: str,
        *,
        ip: str = "",
        user_agent: str = "",
        replacing: str | None = None,
    ) -> SignIn:
        """Check the credentials and start a new session.

        ``replacing`` is the session ID the client presented, if any: it is destroyed
        so every sign-in gets a new ID (SESS-06).

        Raises:
            TooManyAttempts, InvalidCredentials, AccountDisabled: See ``UserService.authenticate``.
        """
        user = await self.users.authenticate(email, password, ip=ip)
        issued = await self.sessions.start(
            user.id, ip=ip, user_agent=user_agent, replacing=replacing
        )
        self.events.emit("login_succeeded", user=user.id, session=issued.record.handle, ip=ip)
        return SignIn(user, issued)

    async def authenticate(self, session_id: str) -> Principal:
        """Resolve a presented session ID to a principal: the per-request check.

        Raises:
            SessionInvalid, SessionExpired: The ID is not a live session.
        """
        session = await self.sessions.resolve(session_id)
        return Principal(user_id=session.user_id, method="session", session=session)

    async def logout(self, session_id: str) -> None:
        """End the session with this ID, if any (idempotent)."""
        await self.sessions.end(session_id)

    async def reauthenticate(
        self, principal: Principal, session_id: str, password: str, *, ip: str = ""
    ) -> SignIn:
        """Prove the password again; the session gets a new ID and fresh deadlines.

        Raises:
            TooManyAttempts, InvalidCredentials, AccountDisabled: Wrong password etc.
            SessionInvalid: The session ended meanwhile.
        """
        user = await self.users.verify_password(principal.user_id, password, ip=ip)
        issued = await self.sessions.reauthenticated(session_id, principal.session)
        self.events.emit("reauthenticated", user=user.id, session=issued.record.handle)
        return SignIn(user, issued)

    async def change_password(
        self,
        principal: Principal,
        session_id: str,
        current_password: str,
        new_password: str,
        *,
        ip: str = "",
    ) -> SignIn:
        """Change the password; every other session ends and this one gets a new ID.

        Raises:
            InvalidCredentials: ``current_password`` is wrong.
            WeakPassword: ``new_password`` fails the policy.
        """
        user = await self.users.verify_password(principal.user_id, current_password, ip=ip)
        await self.users.change_password(user, new_password)
        issued = await self.sessions.reauthenticated(session_id, principal.session)
        await self.sessions.end_all(user.id, keep=issued.record)
        return SignIn(user, issued)

    def require_recent_auth(self, principal: Principal) -> None:
        """Refuse sensitive actions unless the password was proven recently (TIME-05).

        Raises:
            ReauthRequired: It was not.
        """
        if not self.sessions.is_recently_authenticated(principal.session):
            raise ReauthRequired

    async def end_session(self, principal: Principal, handle: str) -> bool:
        """End one of the principal's sessions by handle; return whether it was the current one.

        Ending another device needs a recent sign-in (SESS-12); ending your own
        session is a sign-out and needs none.

        Raises:
            ReauthRequired: Another device, and no recent sign-in.
            SessionNotFound: No such session of this user.
        """
        current = handle == principal.session.handle
        if not current:
            self.require_recent_auth(principal)
        await self.sessions.end_by_handle(principal.user_id, handle)
        return current

    async def end_all_sessions(self, principal: Principal) -> int:
        """Sign out everywhere, this device included (needs a recent sign-in)."""
        self.require_recent_auth(principal)
        return await self.sessions.end_all(principal.user_id)

    async def disable_user(self, user_id: str) -> int:
        """Disable the account and end every session it has (TERM-04); return how many."""
        await self.users.set_disabled(user_id, disabled=True)
        return await self.sessions.end_all(user_id)

    async def enable_user(self, user_id: str) -> None:
        """Allow the account to sign in again."""
        await self.users.set_disabled(user_id, disabled=False)

    async def user_of(self, principal: Principal) -> UserRecord:
        """Return the principal's account.

        Raises:
            SessionInvalid: The account is gone or disabled (its sessions are void).
        """
        user = await self.stores.users.get(principal.user_id)
        if user is None or user.disabled:
            raise SessionInvalid
        return user

    async def aclose(self) -> None:
        """Close the stores."""
        await self.stores.aclose()
