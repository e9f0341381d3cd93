"""The edge check: a live session or access token in, an internal JWT for one service
out (issues 10 and 11).

:class:`Gateway` is what ``GET /auth/gateway`` calls for every request nginx
(``auth_request``) or Caddy (``forward_auth``) lets through:

1. :meth:`Gateway.audience` -- the service the proxy named must be configured;
2. :meth:`Gateway.authenticate` -- the session cookie through the session strategy
   (idle and absolute deadlines, the device binding when the session has one), read
   past this node's session near-cache (a fresh read of the shared store: a sign-out
   on another node is refused on the very next request, whatever the push latency; a
   store outage fails closed). Token callers (``Authorization: DPoP`` with a proof for
   the original request, or ``Bearer`` as the DPoP policy allows) are verified by the
   access-token strategy in the web layer instead;
3. (the web layer checks CSRF for unsafe original methods of cookie callers);
4. :meth:`Gateway.token_for` -- the internal token from the mint cache, or a new one.
   It is keyed by (session handle, audience), or for a token caller by (its refresh
   family's id, audience), and never outlives the session or the access token.

Revocation. The credential check comes first on every request, so a signed-out session
never gets a token, cached or not. Besides, every sign-out empties the mint caches of
every node, and services that subscribe (``velvetrope.integrations``) refuse the
session's tokens already minted. A token caller's ``sid`` is its family's id, so a
revoked family (device sign-out, refresh-token reuse) is published as a session:

=====================================  ===============================================
push topic                             published by
=====================================  ===============================================
``user-sessions:<user id>``            the session store (device sign-out, sign-out
                                       everywhere, password change, account disabled)
``sessions-expired:<instant>``         the session store's purge
``gateway-revoked:session:<handle>``   this module, on ``session_ended``,
                                       ``session_expired``, ``session_evicted`` and
                                       ``session_rotated`` (the old handle); and on
                                       ``refresh_family_revoked`` and
                                       ``refresh_reuse_detected`` (the family id)
``gateway-revoked:user:<id>@<ms>``     this module, on ``sessions_ended_all``: tokens of
                                       the user issued before the instant (ms) are void
=====================================  ===============================================
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from velvetrope.clock import Clock, system_clock
from velvetrope.core.credentials import Presented
from velvetrope.core.events import EventName, SecurityEvents
from velvetrope.core.gateway.cache import MintCache, MintCacheStatus
from velvetrope.core.gateway.tokens import GatewayPolicy, InternalTokens, Minted
from velvetrope.core.principal import Principal
from velvetrope.core.sessions import SessionService
from velvetrope.core.strategies import SessionStrategy
from velvetrope.errors import AuthError, GatewayAudienceUnknown, SessionInvalid, StoreUnavailable
from velvetrope.stores.cached_sessions import fresh_reads
from velvetrope.stores.protocols import KeyStore, Notifier

__all__ = [
    "REVOKED_SESSION",
    "REVOKED_USER",
    "Gateway",
    "GatewayStatus",
    "parse_revocation",
]

REVOKED_SESSION = "gateway-revoked:session:"
REVOKED_USER = "gateway-revoked:user:"
_USER_SESSIONS = "user-sessions:"  # CachedSessionStore's topics
_SESSIONS_EXPIRED = "sessions-expired:"
_KEY_UPKEEP = timedelta(minutes=1)
_SESSION_EVENTS = frozenset({"session_ended", "session_expired", "session_evicted"})
_FAMILY_EVENTS = frozenset({"refresh_family_revoked", "refresh_reuse_detected"})
_logger = logging.getLogger("velvetrope")


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """What ``/ready`` reports of the gateway.

    Attributes:
        cache: The mint cache's counters.
        minted: Tokens signed by this node since it started.
        push_connected: Whether this node hears the other nodes' sign-outs now.
    """

    cache: MintCacheStatus
    minted: int
    push_connected: bool


def parse_revocation(topic: str) -> tuple[str, str, float | None] | None:
    """A gateway revocation topic as ``("session", handle, None)`` or
    ``("user", user_id, cutoff_seconds)``; ``None`` for any other topic."""
    if topic.startswith(REVOKED_SESSION):
        handle = topic.removeprefix(REVOKED_SESSION)
        return ("session", handle, None) if handle else None
    if topic.startswith(REVOKED_USER):
        user, _, millis = topic.removeprefix(REVOKED_USER).rpartition("@")
        if not user or not millis.isdigit():
            return None
        return ("user", user, int(millis) / 1000)
    return None


class Gateway:
    """Sessions in, internal tokens out, with the mint cache and its invalidation."""

    def __init__(
        self,
        *,
        sessions: SessionService,
        strategy: SessionStrategy,
        keys: KeyStore,
        notifier: Notifier | None,
        events: SecurityEvents,
        policy: GatewayPolicy,
        now: Clock = system_clock,
    ) -> None:
        """Args:
        sessions: The session service (deadlines).
        strategy: How a session cookie is verified (with its device binding).
        keys: Where the ``internal`` key ring lives.
        notifier: The push channel between nodes, if the stores have one.
        events: The service's security events: sign-outs evict and are pushed.
        policy: Audiences, lifetime, cache size.
        now: The clock.
        """
        self.policy = policy
        self._sessions = sessions
        self._strategy = strategy
        self._notifier = notifier
        self._now = now
        self.tokens = InternalTokens(keys, policy, now=now)
        self.cache = MintCache(
            max_entries=policy.cache_size, renew_before=policy.renew_before, now=now
        )
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self.publish_failures = 0
        self.push_connected = False
        events.add_sink(self._on_event)

    async def start(self) -> None:
        """Load the internal key ring (making its first key if there is none)."""
        await self.tokens.keys.load()

    def audience(self, requested: str | None) -> str:
        """The audience the proxy asked for, if it is configured.

        Raises:
            GatewayAudienceUnknown: None given, or not one of the policy's.
        """
        if requested is None or requested not in self.policy.audiences:
            raise GatewayAudienceUnknown
        return requested

    async def authenticate(self, credential: Presented | None) -> Principal:
        """The edge session behind the cookie: idle and absolute checks, device binding.

        The session is read from the shared store, past this node's near-cache: the
        push that tells this node of a sign-out elsewhere may still be on its way, and
        the edge must not hand a token to a session that has ended.

        Raises:
            SessionInvalid: No cookie, or not a live session.
            StoreUnavailable: The store did not answer (fail closed, even when this
                node's near-cache holds the session).
            SessionExpired, DeviceBindingRequired: As the strategy.
        """
        if credential is None:
            raise SessionInvalid("Sign in first: this request has no session.")
        with fresh_reads():
            return await self._strategy.authenticate(credential, method="gateway")

    async def token_for(self, principal: Principal, audience: str) -> Minted:
        """The internal token for this caller and audience: kept, or minted now.

        A session's token ends by the session's deadline; a token caller's (an access
        token, DPoP-bound or not) by the access token's ``exp``, and is kept under its
        refresh family, so every token the family holds shares the mint.

        Raises:
            SessionInvalid: The principal is neither a session's nor an access token's.
        """
        session, token = principal.session, principal.token
        if session is not None:
            handle, user_id, claims = session.handle, session.user_id, session.claims
            deadline, ends = self._sessions.deadline(session), session.expires_at
        elif token is not None:
            handle, user_id, claims = token.sid, token.sub, token.claims
            deadline = ends = token.expires_at
        else:  # a way in of the application's own: not one the edge knows
            raise SessionInvalid

        async def mint() -> Minted:
            return self.tokens.mint(
                user_id=user_id,
                handle=handle,
                audience=audience,
                not_after=deadline,
                claims=claims,
            )

        return await self.cache.get(
            handle=handle,
            audience=audience,
            user_id=user_id,
            session_ends=ends,
            not_after=deadline,
            mint=mint,
        )

    def jwks(self) -> dict[str, Any]:
        """The public keys that verify internal tokens, as this node knows them."""
        return self.tokens.jwks()

    async def published_jwks(self) -> dict[str, Any]:
        """The public keys that verify internal tokens, as the store holds them (what
        the gateway's JWKS URL serves: every node's keys, whichever node answers)."""
        return await self.tokens.keys.published()

    def status(self) -> GatewayStatus:
        """The mint cache's counters and how many tokens this node signed."""
        return GatewayStatus(self.cache.status(), self.tokens.minted, self.push_connected)

    # --- revocation: local at once, then every node and subscribed service -------------

    def _on_event(self, event: EventName, fields: Mapping[str, str | int]) -> None:
        """Security-event sink: evict here, and queue the push for everyone else."""
        topic = None
        if event in _SESSION_EVENTS or event in _FAMILY_EVENTS or event == "session_rotated":
            name = "session"
            if event == "session_rotated":
                name = "previous"
            elif event in _FAMILY_EVENTS:
                name = "family"
            handle = fields.get(name)
            if isinstance(handle, str):
                self.cache.evict_session(handle)
                topic = REVOKED_SESSION + handle
        elif event == "sessions_ended_all":
            user = fields.get("user")
            if isinstance(user, str):
                self.cache.evict_user(user)
                millis = int(self._now().timestamp() * 1000)
                topic = f"{REVOKED_USER}{user}@{millis}"
        if topic is not None and self._notifier is not None:
            self._outbox.put_nowait(topic)

    async def on_push(self, topic: str) -> None:
        """Apply one pushed topic to the mint cache (other topics are not ours)."""
        if topic.startswith(_USER_SESSIONS):
            self.cache.evict_user(topic.removeprefix(_USER_SESSIONS))
        elif topic.startswith(_SESSIONS_EXPIRED):
            try:
                instant = datetime.fromisoformat(topic.removeprefix(_SESSIONS_EXPIRED))
            except ValueError:
                instant = None
            if instant is None or instant.tzinfo is None:
                self.cache.clear()
            else:
                self.cache.evict_ending(instant.astimezone(UTC))
        else:
            found = parse_revocation(topic)
            if found is not None:
                kind, name, _ = found
                if kind == "session":
                    self.cache.evict_session(name)
                else:
                    self.cache.evict_user(name)

    def _on_status(self, connected: bool) -> None:
        # Pushes may have been missed meanwhile: forget what they could have evicted.
        self.cache.clear()
        self.push_connected = connected

    async def run(self) -> None:
        """Until cancelled: listen for pushes, publish queued revocations, keep the key
        ring current (rotations made elsewhere, a rotation when due)."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._upkeep())
            if self._notifier is not None:
                tasks.create_task(self._notifier.listen(self.on_push, on_status=self._on_status))
                tasks.create_task(self._publish_loop(self._notifier))

    async def _publish_loop(self, notifier: Notifier) -> None:
        while True:
            topic = await self._outbox.get()
            try:
                await notifier.publish(topic)
            except StoreUnavailable as exc:
                # The sessions are gone from the store: every edge refuses them anyway;
                # subscribed services fall back to the tokens' expiry (<= the lifetime).
                self.publish_failures += 1
                _logger.warning("gateway revocation push failed: %s", exc.detail)

    async def flush(self) -> None:
        """Publish what is queued now (tests and shutdown)."""
        if self._notifier is None:
            return
        while not self._outbox.empty():
            topic = self._outbox.get_nowait()
            with contextlib.suppress(StoreUnavailable):
                await self._notifier.publish(topic)

    async def _upkeep(self) -> None:
        while True:
            await asyncio.sleep(_KEY_UPKEEP.total_seconds())
            try:
                await self.tokens.keys.load()
            except AuthError as exc:
                _logger.warning("internal key ring upkeep failed: %s", exc.detail)
