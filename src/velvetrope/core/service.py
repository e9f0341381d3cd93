"""The auth service: one object that wires users, passwords, throttling and sessions.

Web routes, the CLI and integrations talk to this; none of them touch stores.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from velvetrope.clock import Clock, system_clock
from velvetrope.core.accounts import AccountLifecycle, AccountMailPolicy
from velvetrope.core.binding.dbsc import BOUND_SECRET_NAME, SessionBinding, SessionBindingPolicy
from velvetrope.core.binding.dpop import NONCE_SECRET_NAME, DPoPPolicy, DPoPProofs
from velvetrope.core.credentials import Presented
from velvetrope.core.csrf import CSRF_SECRET_NAME, SECRET_BYTES, CsrfTokens
from velvetrope.core.devices import Device, sorted_devices
from velvetrope.core.events import SecurityEvents
from velvetrope.core.gateway import Gateway, GatewayPolicy
from velvetrope.core.hooks import AccountEvent, Hooks
from velvetrope.core.ids import TokenSource
from velvetrope.core.mail import Mailer, NoMailer
from velvetrope.core.maintenance import Maintenance
from velvetrope.core.outbox import MailOutbox
from velvetrope.core.passwords import PasswordHasher, PasswordPolicy
from velvetrope.core.principal import Principal
from velvetrope.core.ratelimit import LoginThrottle, ThrottlePolicy
from velvetrope.core.security_log import SecurityLog, subjects_of
from velvetrope.core.sessions import IssuedSession, SessionPolicy, SessionService
from velvetrope.core.strategies import (
    AccessTokenStrategy,
    DeviceBoundSessionStrategy,
    SessionStrategy,
)
from velvetrope.core.token_operations import TokenOperations
from velvetrope.core.tokens.access import TokenPolicy
from velvetrope.core.tokens.service import TokenPair, TokenService
from velvetrope.core.users import EMAIL_HANDLE_SECRET_NAME, UserService
from velvetrope.errors import (
    InvalidCredentials,
    InvalidInput,
    ReauthRequired,
    SessionInvalid,
    SessionNotFound,
)
from velvetrope.stores.protocols import Stores
from velvetrope.stores.records import (
    RefreshFamilyRecord,
    SecurityEventRecord,
    SessionCacheStatus,
    SessionRecord,
    UserRecord,
)

__all__ = ["AuthService", "ServiceStatus", "SignIn"]


@dataclass(frozen=True, slots=True)
class SignIn:
    """The outcome of a successful sign-in (or re-authentication)."""

    user: UserRecord
    session: IssuedSession


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """What ``/ready`` reports of one node, after its stores answered.

    Attributes:
        revocations_age: How old this node's copy of the revocation feed is
            (``None`` before the first replay).
        push: Whether the stores push changes between nodes.
        session_cache: This node's session near-cache, or ``None`` where lookups are
            local (memory, SQLite).
    """

    revocations_age: timedelta | None
    push: bool
    session_cache: SessionCacheStatus | None


class AuthService(TokenOperations):
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
        dpop_policy: DPoPPolicy | None = None,
        binding_policy: SessionBindingPolicy | None = None,
        events: SecurityEvents | None = None,
        hooks: Hooks | None = None,
        now: Clock = system_clock,
        token_bytes: TokenSource = secrets.token_bytes,
        csrf_secret: bytes | None = None,
        poll_interval: timedelta = timedelta(seconds=1),
        mailer: Mailer | None = None,
        account_policy: AccountMailPolicy | None = None,
        security_log_retention: timedelta = timedelta(days=90),
    ) -> None:
        """Wire the service over ``stores`` (connected later, by :meth:`start`).

        Args:
            stores: Where everything is kept.
            hasher: Password hashing (argon2id, RFC 9106 low-memory by default).
            password_policy: Length and blocklist rules for new passwords.
            session_policy: Session deadlines and limits.
            throttle_policy: Sign-in throttling.
            token_policy: Access and refresh token lifetimes and identities.
            dpop_policy: DPoP-bound tokens (RFC 9449): ``allow`` by default.
            binding_policy: Device-bound sessions (DBSC): ``offer`` by default.
            events: Where security events go.
            hooks: The application's hooks and claims hook (:mod:`velvetrope.core.hooks`).
            now: The clock.
            token_bytes: The random source.
            csrf_secret: The CSRF secret; by default one is made once and shared
                through ``stores`` by every node.
            poll_interval: How often the background work replays the revocation feed.
            mailer: Where reset and verification links go (default: none; links
                cannot be sent).
            account_policy: The links' lifetimes and origin.
            security_log_retention: How long the persisted security log keeps events.
        """
        self.stores = stores
        self._poll_interval = poll_interval
        self._token_bytes = token_bytes
        self._csrf_secret = csrf_secret
        self._csrf: CsrfTokens | None = None
        self.events = events or SecurityEvents()
        self.hooks = hooks or Hooks()
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
            claims_for=self.token_claims,
        )
        self.dpop = DPoPProofs(stores.one_time, dpop_policy, events=self.events, now=now)
        self.binding = SessionBinding(
            self.sessions,
            stores.one_time,
            binding_policy,
            events=self.events,
            now=now,
            token_bytes=token_bytes,
        )
        self.session_strategy: SessionStrategy = (
            SessionStrategy(self.sessions)
            if self.binding.policy.mode == "off"
            else DeviceBoundSessionStrategy(self.sessions, self.binding)
        )
        self.token_strategy = AccessTokenStrategy(self.tokens, self.dpop)
        self.accounts = AccountLifecycle(
            self.users,
            stores.users,
            stores.one_time,
            MailOutbox(mailer or NoMailer(), events=self.events),
            end_everything=self.sign_out_everywhere,
            policy=account_policy,
            events=self.events,
            hooks=self.hooks,
            now=now,
            token_bytes=token_bytes,
        )
        # The persisted security log listens to the event stream (core/security_log.py).
        self.security_log = SecurityLog(
            stores.security_log, retention=security_log_retention, now=now, token_bytes=token_bytes
        )
        self.events.add_sink(self.security_log.sink)

    async def start(self, *, rotate_keys: bool = True) -> None:
        """Connect the stores, then load what the service keeps in memory (signing keys,
        revocations). Call once, before serving."""
        await self.stores.start()
        await self.tokens.start(rotate_keys=rotate_keys)
        secret = self._csrf_secret
        if secret is None:  # shared through the database, so every node agrees
            secret = await self._shared_secret(CSRF_SECRET_NAME)
        self._csrf = CsrfTokens(secret, token_bytes=self._token_bytes)
        self.dpop.use_secret(await self._shared_secret(NONCE_SECRET_NAME))
        self.binding.use_secret(await self._shared_secret(BOUND_SECRET_NAME))
        self.users.use_secret(await self._shared_secret(EMAIL_HANDLE_SECRET_NAME))

    async def _shared_secret(self, name: str) -> bytes:
        """The secret called ``name`` in the key store, made once (every node shares it)."""
        candidate = base64.b64encode(self._token_bytes(SECRET_BYTES)).decode("ascii")
        return base64.b64decode(await self.stores.keys.secret(name, candidate))

    @property
    def csrf(self) -> CsrfTokens:
        """CSRF tokens under the secret every node shares (after :meth:`start`)."""
        if self._csrf is None:
            raise RuntimeError("the auth service is not started; call start() first")
        return self._csrf

    async def register(self, email: str, password: str, *, ip: str = "") -> UserRecord:
        """Create an account; see :meth:`UserService.register`. Runs the register hooks."""
        user = await self.users.register(email, password, ip=ip)
        await self.hooks.emit(AccountEvent("registered", user.id, email=user.email, ip=ip))
        return user

    async def login(
        self,
        email: str,
        password: str,
        *,
        ip: str = "",
        user_agent: str = "",
        replacing: str | None = None,
        persistent: bool = True,
    ) -> SignIn:
        """Check the credentials and start a new session (with the user's email and
        application claims); then run the sign-in hooks.

        ``replacing`` is the session ID the client presented, if any: it is destroyed
        so every sign-in gets a new ID (SESS-06). ``persistent=False`` ("remember me"
        unchecked) gives the session the policy's shorter ``transient_lifetime``.

        Raises:
            TooManyAttempts, InvalidCredentials, AccountDisabled: See ``UserService.authenticate``.
            InvalidClaims: The claims hook failed (no session was started).
        """
        user = await self.users.authenticate(email, password, ip=ip)
        claims = await self.hooks.claims_for(user)
        issued = await self.sessions.start(
            user.id,
            ip=ip,
            user_agent=user_agent,
            replacing=replacing,
            email=user.email,
            claims=claims,
            persistent=persistent,
        )
        if not await self._still_valid(user):  # disabled / password changed while we hashed
            await self.sessions.end(issued.secret)
            raise InvalidCredentials
        self.events.emit(
            "login_succeeded",
            user=user.id,
            session=issued.record.handle,
            ip=ip,
            user_agent=user_agent,
        )
        await self.hooks.emit(
            AccountEvent(
                "signed_in",
                user.id,
                email=user.email,
                device=issued.record.handle,
                method="session",
                ip=ip,
            )
        )
        return SignIn(user, issued)

    async def authenticate(self, session_id: str, *, method: str = "session") -> Principal:
        """Resolve a presented session ID to a principal: the per-request check.

        Raises:
            SessionInvalid, SessionExpired: The ID is not a live session.
        """
        return await self.session_strategy.authenticate(Presented(session_id), method=method)

    async def authenticate_bearer(self, access_token: str, *, method: str = "bearer") -> Principal:
        """Verify an access token: the per-request check for API clients (and, with
        ``method="jwt-cookie"``, for browsers holding it in a cookie).

        Raises:
            InvalidToken: Not a valid, unrevoked access token of ours.
        """
        return await self.token_strategy.authenticate(Presented(access_token), method=method)

    async def token_login(
        self,
        email: str,
        password: str,
        *,
        ip: str = "",
        user_agent: str = "",
        jkt: str | None = None,
        persistent: bool = True,
    ) -> TokenPair:
        """The password grant: check the credentials and open a refresh family (bound to
        the DPoP key with thumbprint ``jkt``, if given). ``persistent=False`` (a browser
        sign-in without "remember me") gives the family the sessions' shorter lifetime.

        Raises:
            TooManyAttempts, InvalidCredentials, AccountDisabled: As for :meth:`login`.
        """
        user = await self.users.authenticate(email, password, ip=ip)
        short = None if persistent else self.sessions.policy.short_lifetime
        pair = await self.tokens.issue_for(
            user.id, ip=ip, user_agent=user_agent, jkt=jkt, lifetime=short
        )
        if not await self._still_valid(user):  # disabled / password changed while we hashed
            await self.tokens.revoke_family(pair.family.id)
            raise InvalidCredentials
        self.events.emit(
            "login_succeeded", user=user.id, family=pair.family.id, ip=ip, user_agent=user_agent
        )
        await self.hooks.emit(
            AccountEvent(
                "signed_in", user.id, email=user.email, device=pair.family.id, method="token", ip=ip
            )
        )
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
        claims = await self.hooks.claims_for(user)
        issued = await self.sessions.reauthenticated(session_id, session, claims=claims)
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
        claims = await self.hooks.claims_for(user)  # before anything changes
        await self.users.change_password(user, new_password)
        await self.tokens.revoke_user(user.id)
        await self.hooks.emit(AccountEvent("password_changed", user.id, email=user.email, ip=ip))
        if principal.session is None or session_id is None:
            await self.sessions.end_all(user.id)
            return None
        try:
            issued = await self.sessions.reauthenticated(
                session_id, principal.session, claims=claims
            )
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
        await self.end_device(principal.user_id, handle)
        return current

    async def end_device(self, user_id: str, handle: str) -> None:
        """End the user's device with ``handle``: a session, or a token family and its
        access tokens (an admin's action: no re-authentication asked).

        Raises:
            SessionNotFound: The user has no live device with that handle.
        """
        for strategy in (self.session_strategy, self.token_strategy):
            if await strategy.end_device(user_id, handle):
                return
        raise SessionNotFound

    async def devices(self, user_id: str, *, current: str | None = None) -> list[Device]:
        """The user's devices, sessions and token families, oldest first.

        Args:
            user_id: Whose.
            current: The handle of the device asking, marked ``current``.
        """
        found = [
            *await self.session_strategy.devices(user_id),
            *await self.token_strategy.devices(user_id),
        ]
        return sorted_devices(found, current=current)

    async def end_all_sessions(self, principal: Principal) -> int:
        """Sign out everywhere, this device included (needs a recent sign-in)."""
        await self.require_recent_auth(principal)
        return await self.sign_out_everywhere(principal.user_id)

    async def sign_out_everywhere(self, user_id: str) -> int:
        """End every session and token family of the user (an admin's action);
        return how many devices ended."""
        ended = await self.sessions.end_all(user_id)
        ended += await self.tokens.revoke_user(user_id)
        await self.hooks.emit(AccountEvent("signed_out", user_id, all_devices=True))
        return ended

    async def logout(self, principal: Principal) -> None:
        """End the device behind this request: its session, or its token family."""
        if principal.session is not None:
            await self.sessions.end_by_handle(principal.user_id, principal.handle)
            return
        await self.token_strategy.destroy(principal)

    async def disable_user(self, user_id: str) -> int:
        """Disable the account and end every session it has (TERM-04); return how many."""
        await self.users.set_disabled(user_id, disabled=True)
        return await self.sign_out_everywhere(user_id)

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

    async def find_user(self, email_or_id: str) -> UserRecord:
        """The account with this email address or id.

        Raises:
            UserNotFound: There is none.
        """
        return await self.users.find(email_or_id)

    async def list_users(self, *, limit: int = 100, offset: int = 0) -> Sequence[UserRecord]:
        """Accounts, oldest first."""
        return await self.users.list(limit=limit, offset=offset)

    def session_deadline(self, session: SessionRecord) -> datetime:
        """When ``session`` ends if unused from now (the earlier of its deadlines)."""
        return self.sessions.deadline(session)

    def gateway(self, policy: GatewayPolicy) -> Gateway:
        """A hybrid gateway over this service's sessions and stores (one per server)."""
        return Gateway(
            sessions=self.sessions,
            strategy=self.session_strategy,
            keys=self.stores.keys,
            notifier=self.stores.notifier,
            events=self.events,
            policy=policy,
            now=self.now,
        )

    async def sync_revocations(self) -> None:
        """Bring this node's token revocations up to date now, from the feed every node
        writes (the edge, before it trusts an access token: the push that would tell
        this node may still be on its way).

        Raises:
            StoreUnavailable: The store did not answer (fail closed).
        """
        await self.tokens.revocations.sync()

    def remembered(self, session: SessionRecord) -> bool:
        """Whether ``session`` was a "remember me" sign-in (its cookie outlives the browser)."""
        return self.sessions.policy.persistent(session)

    def remembered_family(self, family: RefreshFamilyRecord) -> bool:
        """Whether a token sign-in was remembered: its family outlives the sessions'
        short lifetime (see ``SessionPolicy.persistent``)."""
        return family.expires_at - family.created_at > self.sessions.policy.short_lifetime

    async def live_session(self, session_id: str) -> SessionRecord:
        """The live session behind a presented session ID (see ``SessionService.resolve``).

        Raises:
            SessionInvalid, SessionExpired: The ID is not a live session.
        """
        return await self.sessions.resolve(session_id)

    async def emit(self, event: AccountEvent) -> None:
        """Tell the application's hooks about ``event``."""
        await self.hooks.emit(event)

    async def welcome(self, user: UserRecord) -> None:
        """Queue a verification link for a new account, if mail can be sent (never fails
        the sign-up; see ``AccountLifecycle.welcome``)."""
        await self.accounts.welcome(user)

    async def request_password_reset(self, email: str, *, ip: str = "") -> None:
        """Mail a reset link if ``email`` has an enabled account; the same either way.

        Raises:
            InvalidEmail: Not an address at all (says nothing about accounts).
            MailUnavailable: This server cannot send mail (the same for every address).
        """
        await self.accounts.request_password_reset(email, ip=ip)

    async def reset_password(self, token: str, new_password: str, *, ip: str = "") -> UserRecord:
        """Set a new password with a reset link; end every session and token family.

        Raises:
            InvalidLink: The link is not (or no longer) valid.
            WeakPassword: The new password fails the policy (the link stays usable).
        """
        return await self.accounts.reset_password(token, new_password, ip=ip)

    async def send_verification(self, user: UserRecord, *, wait: bool = False) -> bool:
        """Mail ``user`` a link that verifies their address; ``False`` if it already is
        verified (see ``AccountLifecycle.send_verification``).

        Raises:
            MailUnavailable: No mailer, or (``wait``) the server did not take it.
            TooManyAttempts: A verification mail went out within the cooldown.
        """
        return await self.accounts.send_verification(user, wait=wait)

    async def verify_email(self, token: str) -> UserRecord:
        """Mark the address verified with a verification link.

        Raises:
            InvalidLink: The link is not (or no longer) valid, or the address changed.
        """
        return await self.accounts.verify_email(token)

    async def maintain(self) -> None:
        """Periodic upkeep: purge what expired (sessions, counters, families, single-use
        values), rotate the signing key when it is due."""
        await self.sessions.purge_expired()
        await self.users.throttle.purge(self.now())
        await self.tokens.maintain()
        await self.stores.one_time.purge_expired(self.now())
        await self.security_log.purge()

    async def run_background(self) -> None:
        """Keep this node in step until cancelled: replay revocations and keys every
        poll interval, apply pushes from other nodes at once, and :meth:`maintain`
        (see :mod:`velvetrope.core.maintenance`)."""
        maintenance = Maintenance(
            sync=self.tokens.sync,
            purge=self.maintain,
            on_change=self.tokens.on_change,
            notifier=self.stores.notifier,
            poll=self._poll_interval,
        )
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.security_log.run())  # writes the queued security events
            tasks.create_task(maintenance.run())

    async def status(self) -> ServiceStatus:
        """This node's state for readiness checks, once its stores answer.

        Raises:
            StoreUnavailable: A store does not answer.
        """
        await self.stores.ping()
        return ServiceStatus(
            revocations_age=self.tokens.revocations.staleness(),
            push=self.stores.notifier is not None,
            session_cache=self.stores.session_cache_status(),
        )

    async def security_events(
        self, user: UserRecord, *, limit: int = 50, events: Sequence[str] = ()
    ) -> Sequence[SecurityEventRecord]:
        """The user's newest security events (failed sign-ins on their address included),
        newest first; only ``events`` when given (e.g. ``SIGN_INS``).

        Raises:
            StoreUnavailable: The store did not answer.
        """
        subjects = subjects_of(user.id, self.users.email_handle(user.email))
        return await self.security_log.recent(subjects, limit=limit, events=events)

    async def aclose(self) -> None:
        """Send the mail still queued (a few seconds at most), write what the security
        log still holds (best effort), close the stores and stop the hashing workers."""
        try:
            await self.accounts.outbox.aclose()
            await self.security_log.flush()
        finally:
            self.users.hasher.close()
            await self.stores.aclose()


def _session_of(principal: Principal) -> SessionRecord:
    if principal.session is None:
        raise InvalidInput("Token clients re-authenticate with grant_type=password at /auth/token.")
    return principal.session
