"""The auth service: one object that wires users, passwords, throttling and sessions.

Web routes, the CLI and integrations talk to this; none of them touch stores.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from velvetrope.clock import Clock, system_clock
from velvetrope.core.csrf import CSRF_SECRET_NAME, SECRET_BYTES, CsrfTokens
from velvetrope.core.events import SecurityEvents
from velvetrope.core.ids import TokenSource
from velvetrope.core.passwords import PasswordHasher, PasswordPolicy
from velvetrope.core.principal import AuthMethod, Principal
from velvetrope.core.ratelimit import LoginThrottle, ThrottlePolicy
from velvetrope.core.sessions import IssuedSession, SessionPolicy, SessionService
from velvetrope.core.tokens.access import TokenPolicy
from velvetrope.core.tokens.service import TokenPair, TokenService
from velvetrope.core.users import UserService
from velvetrope.errors import (
    InvalidCredentials,
    InvalidInput,
    ReauthRequired,
    SessionInvalid,
    SessionNotFound,
)
from velvetrope.settings import Settings
from velvetrope.stores import Stores, open_stores
from velvetrope.stores.records import SessionRecord, UserRecord

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
        token_policy: TokenPolicy | None = None,
        events: SecurityEvents | None = None,
        now: Clock = system_clock,
        token_bytes: TokenSource = secrets.token_bytes,
        csrf_secret: bytes | None = None,
    ) -> None:
        self.stores = stores
        self._token_bytes = token_bytes
        self._csrf_secret = csrf_secret
        self._csrf: CsrfTokens | None = None
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
        self.tokens = TokenService(
            stores,
            token_policy or TokenPolicy(issuer="urn:velvetrope", audience="urn:velvetrope"),
            events=self.events,
            now=now,
            token_bytes=token_bytes,
        )

    async def start(self, *, rotate_keys: bool = True) -> None:
        """Connect the stores, then load what the service keeps in memory (signing keys,
        revocations). Call once, before serving."""
        await self.stores.start()
        await self.tokens.start(rotate_keys=rotate_keys)
        secret = self._csrf_secret
        if secret is None:  # shared through the database, so every node agrees
            candidate = base64.b64encode(self._token_bytes(SECRET_BYTES)).decode("ascii")
            secret = base64.b64decode(await self.stores.keys.secret(CSRF_SECRET_NAME, candidate))
        self._csrf = CsrfTokens(secret, token_bytes=self._token_bytes)

    @property
    def csrf(self) -> CsrfTokens:
        """CSRF tokens under the secret every node shares (after :meth:`start`)."""
        if self._csrf is None:
            raise RuntimeError("the auth service is not started; call start() first")
        return self._csrf

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthService:
        """Open the configured stores and build the service.

        Raises:
            ConfigurationError: The database URL is not supported.
            StoreUnavailable: The database cannot be opened.
        """
        return cls(
            open_stores(
                settings.database_url,
                sqlite_synchronous=settings.sqlite_synchronous,
                redis_url=settings.redis_url,
                redis_prefix=settings.redis_prefix,
                session_cache_ttl=settings.session_cache_ttl,
            ),
            hasher=PasswordHasher(
                settings.password_hash_profile, max_concurrency=settings.password_hash_concurrency
            ),
            password_policy=PasswordPolicy(min_length=settings.password_min_length),
            session_policy=settings.session_policy(),
            throttle_policy=settings.throttle_policy(),
            token_policy=settings.token_policy(),
            csrf_secret=settings.csrf_secret_bytes(),
        )

    async def register(self, email: str, password: str, *, ip: str = "") -> UserRecord:
        """Create an account; see :meth:`UserService.register`."""
        return await self.users.register(email, password, ip=ip)

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
        if not await self._still_valid(user):  # disabled / password changed while we hashed
            await self.sessions.end(issued.secret)
            raise InvalidCredentials
        self.events.emit("login_succeeded", user=user.id, session=issued.record.handle, ip=ip)
        return SignIn(user, issued)

    async def authenticate(self, session_id: str) -> Principal:
        """Resolve a presented session ID to a principal: the per-request check.

        Raises:
            SessionInvalid, SessionExpired: The ID is not a live session.
        """
        session = await self.sessions.resolve(session_id)
        return Principal(
            user_id=session.user_id, method="session", handle=session.handle, session=session
        )

    async def authenticate_bearer(
        self, access_token: str, *, method: AuthMethod = "bearer"
    ) -> Principal:
        """Verify an access token: the per-request check for API clients (and, with
        ``method="jwt-cookie"``, for browsers holding it in a cookie).

        Raises:
            InvalidToken: Not a valid, unrevoked access token of ours.
        """
        return await self.tokens.authenticate(access_token, method=method)

    async def token_login(
        self, email: str, password: str, *, ip: str = "", user_agent: str = ""
    ) -> TokenPair:
        """The password grant: check the credentials and open a refresh family.

        Raises:
            TooManyAttempts, InvalidCredentials, AccountDisabled: As for :meth:`login`.
        """
        user = await self.users.authenticate(email, password, ip=ip)
        pair = await self.tokens.issue_for(user.id, ip=ip, user_agent=user_agent)
        if not await self._still_valid(user):  # disabled / password changed while we hashed
            await self.tokens.revoke_family(pair.family.id)
            raise InvalidCredentials
        self.events.emit("login_succeeded", user=user.id, family=pair.family.id, ip=ip)
        return pair

    async def _still_valid(self, verified: UserRecord) -> bool:
        current = await self.stores.users.get(verified.id)
        return (
            current is not None
            and not current.disabled
            and current.password_hash == verified.password_hash
        )

    async def end_session_id(self, session_id: str) -> None:
        """End the session with this ID, if any (idempotent; sign-out without a check)."""
        await self.sessions.end(session_id)

    async def reauthenticate(
        self, principal: Principal, session_id: str, password: str, *, ip: str = ""
    ) -> SignIn:
        """Prove the password again; the session gets a new ID and fresh deadlines.

        Raises:
            TooManyAttempts, InvalidCredentials, AccountDisabled: Wrong password etc.
            SessionInvalid: The session ended meanwhile.
        """
        session = _session_of(principal)
        user = await self.users.verify_password(principal.user_id, password, ip=ip)
        issued = await self.sessions.reauthenticated(session_id, session)
        self.events.emit("reauthenticated", user=user.id, session=issued.record.handle)
        return SignIn(user, issued)

    async def change_password(
        self,
        principal: Principal,
        session_id: str | None,
        current_password: str,
        new_password: str,
        *,
        ip: str = "",
    ) -> SignIn | None:
        """Change the password; every other session and every token of the user ends.

        A cookie session continues under a new ID (returned); a bearer client's tokens
        all end and it signs in again (``None``).

        Raises:
            InvalidCredentials: ``current_password`` is wrong.
            WeakPassword: ``new_password`` fails the policy.
        """
        user = await self.users.verify_password(principal.user_id, current_password, ip=ip)
        await self.users.change_password(user, new_password)
        await self.tokens.revoke_user(user.id)
        if principal.session is None or session_id is None:
            await self.sessions.end_all(user.id)
            return None
        try:
            issued = await self.sessions.reauthenticated(session_id, principal.session)
        except SessionInvalid:
            await self.sessions.end_all(user.id)  # the password changed: nobody else stays in
            raise
        await self.sessions.end_all(user.id, keep=issued.record)
        return SignIn(user, issued)

    async def require_recent_auth(self, principal: Principal) -> None:
        """Refuse sensitive actions unless the password was proven recently (TIME-05).

        Raises:
            ReauthRequired: It was not.
        """
        if principal.session is not None:
            proven = principal.session.authenticated_at
        else:
            family = await self.tokens.refresh.get(principal.handle)
            if family is None:
                raise ReauthRequired
            proven = family.authenticated_at
        if self.now() - proven >= self.sessions.policy.reauth_window:
            raise ReauthRequired

    async def end_session(self, principal: Principal, handle: str) -> bool:
        """End one of the principal's devices (a session or a token family) by handle.

        Returns whether it was the current one. Ending another device needs a recent
        sign-in (SESS-12); ending your own is a sign-out and needs none.

        Raises:
            ReauthRequired: Another device, and no recent sign-in.
            SessionNotFound: No such device of this user.
        """
        current = handle == principal.handle
        if not current:
            await self.require_recent_auth(principal)
        try:
            await self.sessions.end_by_handle(principal.user_id, handle)
        except SessionNotFound:
            family = await self.tokens.refresh.get(handle)
            if family is None or family.user_id != principal.user_id or family.revoked_at:
                raise
            await self.tokens.revoke_family(handle)
        return current

    async def end_all_sessions(self, principal: Principal) -> int:
        """Sign out everywhere, this device included (needs a recent sign-in)."""
        await self.require_recent_auth(principal)
        ended = await self.sessions.end_all(principal.user_id)
        return ended + await self.tokens.revoke_user(principal.user_id)

    async def logout(self, principal: Principal) -> None:
        """End the device behind this request: its session, or its token family."""
        if principal.session is not None:
            await self.sessions.end_by_handle(principal.user_id, principal.handle)
            return
        await self.tokens.revoke_family(principal.handle)
        if principal.token is not None:
            await self.tokens.revocations.revoke_jti(
                principal.token.jti, until=principal.token.expires_at
            )

    async def disable_user(self, user_id: str) -> int:
        """Disable the account and end every session it has (TERM-04); return how many."""
        await self.users.set_disabled(user_id, disabled=True)
        ended = await self.sessions.end_all(user_id)
        return ended + await self.tokens.revoke_user(user_id)

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


def _session_of(principal: Principal) -> SessionRecord:
    if principal.session is None:
        raise InvalidInput("Token clients re-authenticate with grant_type=password at /auth/token.")
    return principal.session
