"""Device-bound browser sessions (DBSC), as the W3C draft describes and Chromium implements it.

At sign-in the response offers registration (``Secure-Session-Registration``) with a
single-use challenge kept in ``stores.one_time``. The browser makes a key pair (in
hardware where it can), and posts a ``dbsc+jwt`` signed by it: its public key in the
``jwk`` header, the challenge as ``jti``. :meth:`SessionBinding.register` checks it
through the one JOSE module, stores the public key on the session
(``SessionStore.bind``) and from then on the session needs a short-lived *bound
cookie* as well: ``<expiry>.<MAC>``, an HMAC under a secret every node shares over the
device key and the expiry (:meth:`SessionBinding.bound_cookie`), checked on every
request without a store read (:meth:`SessionBinding.check`). When it expires the
browser holds back its requests, asks the refresh endpoint for a challenge, signs it
with the device key and gets a new bound cookie (:meth:`SessionBinding.refresh`). The
long-lived session cookie alone is refused, so a copied cookie jar stops working
within :attr:`SessionBindingPolicy.bound_cookie_ttl`.

``mode``: ``off`` (no offer), ``offer`` (browsers that can bind do; others keep a plain
session), ``require`` (an unbound session is refused once
:attr:`SessionBindingPolicy.grace` has passed since sign-in). The browser registers
asynchronously, tens of milliseconds after the sign-in response, racing the first page
load: during the grace a session without a bound cookie passes (an unbound one under
``require``, and a just-bound one whose request left before the new cookie arrived);
a stale or forged bound cookie never does. A cookie stolen in those first seconds is
the exposure this leaves. A session is bound once and for good: registration
needs the challenge issued to that very session, and a bound session cannot register
another key.

The session identifier the browser knows is the key's RFC 7638 thumbprint (the stored
JWK's ``kid``): it survives the session ID's rotation at re-authentication.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import math
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from velvetrope.clock import Clock, system_clock
from velvetrope.core.events import SecurityEvents
from velvetrope.core.ids import TokenSource
from velvetrope.core.sessions import SessionService
from velvetrope.core.tokens import codec
from velvetrope.core.tokens.codec import ProofAlgorithm
from velvetrope.errors import DeviceBindingRequired, InvalidDeviceProof, InvalidToken
from velvetrope.stores.protocols import OneTimeStore
from velvetrope.stores.records import SessionRecord

__all__ = [
    "BOUND_SECRET_NAME",
    "DBSC_ALGORITHMS",
    "DBSC_TYP",
    "BindingMode",
    "BoundSession",
    "SessionBinding",
    "SessionBindingPolicy",
    "device_session_id",
]

DBSC_TYP = "dbsc+jwt"
DBSC_ALGORITHMS: tuple[ProofAlgorithm, ...] = ("ES256", "RS256")
"""What Chromium offers to sign with; the registration header lists them in this order."""
BOUND_SECRET_NAME = "dbsc-bound-v1"  # noqa: S105 - the name of a stored secret
BindingMode = Literal["off", "offer", "require"]
_REGISTRATION = "dbsc-reg:"
_REFRESH = "dbsc-ref:"
_MAC_CHARS = 22
_SLACK_SECONDS = 2


@dataclass(frozen=True, slots=True)
class SessionBindingPolicy:
    """How browser sessions are bound to devices.

    Attributes:
        mode: ``off``, ``offer`` or ``require`` (see the module docstring).
        bound_cookie_ttl: How long a bound cookie lives; a copied cookie jar works at
            most this long. Chromium renews it on its own when 120 s or less are left.
        registration_ttl: How long a sign-in's registration challenge stays usable.
        challenge_ttl: How long a refresh challenge stays usable.
        grace: How long after sign-in a session may still be presented without a bound
            cookie while the browser registers: under ``require`` an unbound session, and
            a session just bound by a request already on its way without the new cookie.
    """

    mode: BindingMode = "offer"
    bound_cookie_ttl: timedelta = timedelta(minutes=10)
    registration_ttl: timedelta = timedelta(minutes=2)
    challenge_ttl: timedelta = timedelta(minutes=1)
    grace: timedelta = timedelta(seconds=10)

    def __post_init__(self) -> None:
        if not timedelta(seconds=1) <= self.bound_cookie_ttl <= timedelta(hours=1):
            raise ValueError("the bound cookie lifetime must be between 1 second and 1 hour")
        if not timedelta(0) <= self.grace <= timedelta(minutes=5):
            raise ValueError("the binding grace must be between 0 and 5 minutes")


@dataclass(frozen=True, slots=True)
class BoundSession:
    """A session just bound to a device key.

    Attributes:
        record: The session, with its ``device_key``.
        session_id: The identifier the browser knows it by (the key's thumbprint).
    """

    record: SessionRecord
    session_id: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def device_session_id(session: SessionRecord) -> str | None:
    """The browser's identifier of a bound session (the device key's thumbprint)."""
    if session.device_key is None:
        return None
    kid = json.loads(session.device_key).get("kid")
    return kid if isinstance(kid, str) else None


class SessionBinding:
    """Offers, registrations, refresh challenges and bound cookies of device-bound sessions."""

    def __init__(
        self,
        sessions: SessionService,
        one_time: OneTimeStore,
        policy: SessionBindingPolicy | None = None,
        *,
        events: SecurityEvents | None = None,
        now: Clock = system_clock,
        token_bytes: TokenSource = secrets.token_bytes,
    ) -> None:
        self.policy = policy or SessionBindingPolicy()
        self._sessions = sessions
        self._one_time = one_time
        self._events = events or SecurityEvents()
        self._now = now
        self._token_bytes = token_bytes
        self._secret: bytes | None = None

    def use_secret(self, secret: bytes) -> None:
        """Set the bound-cookie secret every node shares (``AuthService.start`` does)."""
        if len(secret) < 32:
            raise ValueError("the bound-cookie secret must be at least 32 bytes")
        self._secret = secret

    async def _challenge(self, prefix: str, session: SessionRecord, ttl: timedelta) -> str:
        challenge = _b64(self._token_bytes(16))
        now = self._now()
        await self._one_time.put(prefix + challenge, session.handle, now=now, expires_at=now + ttl)
        return challenge

    async def offer(self, session: SessionRecord) -> str:
        """A registration challenge for a session just signed in (single use)."""
        return await self._challenge(_REGISTRATION, session, self.policy.registration_ttl)

    async def challenge(self, session: SessionRecord) -> str:
        """A refresh challenge for a bound session (single use, short-lived)."""
        return await self._challenge(_REFRESH, session, self.policy.challenge_ttl)

    async def _spend(self, prefix: str, claims: dict[str, object], session: SessionRecord) -> bool:
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= 64:
            return False
        owner = await self._one_time.take(prefix + jti, self._now())
        return owner is not None and hmac.compare_digest(owner, session.handle)

    def _refuse(self, session: SessionRecord, step: str, reason: str) -> InvalidDeviceProof:
        self._events.emit(
            "session_binding_failed",
            user=session.user_id,
            session=session.handle,
            step=step,
            reason=reason,
        )
        return InvalidDeviceProof(reason)

    async def register(self, secret: str, response: str) -> BoundSession:
        """Bind the session with ID ``secret`` to the key that signed ``response``.

        Raises:
            SessionInvalid, SessionExpired: No live session behind ``secret``.
            InvalidDeviceProof: Already bound, a bad proof, or not this session's challenge.
        """
        session = await self._sessions.resolve(secret)
        if session.device_key is not None:
            raise self._refuse(session, "register", "already bound")
        try:
            proof = codec.decode_proof(response, typ=DBSC_TYP, algorithms=DBSC_ALGORITHMS)
        except InvalidToken as exc:
            raise self._refuse(session, "register", exc.reason) from None
        if not await self._spend(_REGISTRATION, proof.claims, session):
            raise self._refuse(session, "register", "not this session's challenge")
        key = {**proof.jwk, "alg": proof.header["alg"], "kid": proof.thumbprint}
        device_key = json.dumps(key, sort_keys=True, separators=(",", ":"))
        if not await self._sessions.bind(secret, device_key):
            raise self._refuse(session, "register", "session ended")
        self._events.emit(
            "session_bound", user=session.user_id, session=session.handle, key=proof.thumbprint
        )
        return BoundSession(dataclasses.replace(session, device_key=device_key), proof.thumbprint)

    async def refresh(self, session: SessionRecord, response: str) -> bool:
        """Check a refresh proof of a bound session; ``False`` when it answers a challenge
        that is unknown, spent or expired (ask again: Chromium resends a cached proof).

        Raises:
            InvalidDeviceProof: The session is unbound, or the proof is not signed by its key.
        """
        if session.device_key is None:
            raise self._refuse(session, "refresh", "not bound")
        key = json.loads(session.device_key)
        try:
            proof = codec.decode_proof(response, typ=DBSC_TYP, algorithms=(key["alg"],), key=key)
        except InvalidToken as exc:
            raise self._refuse(session, "refresh", exc.reason) from None
        return await self._spend(_REFRESH, proof.claims, session)

    def _mac(self, device_key: str, expiry: int) -> str:
        if self._secret is None:
            raise RuntimeError("bound cookies need the shared secret; start the service first")
        message = device_key.encode() + b"\x00" + str(expiry).encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())[:_MAC_CHARS]

    def bound_cookie(self, session: SessionRecord) -> tuple[str, timedelta]:
        """A new bound cookie for a bound session, and how long it lives."""
        assert session.device_key is not None  # noqa: S101 - callers bind first
        ttl = self.policy.bound_cookie_ttl
        # Never before the browser drops it (Max-Age counts from when it arrives), plus
        # a little for a request sent in its last moment: a live cookie is never refused.
        expiry = math.ceil((self._now() + ttl).timestamp()) + _SLACK_SECONDS
        return f"{expiry}.{self._mac(session.device_key, expiry)}", ttl

    def _settling(self, session: SessionRecord) -> bool:
        return self._now() < session.created_at + self.policy.grace

    def check(self, session: SessionRecord, bound_cookie: str | None) -> None:
        """The per-request check: a bound session needs its live bound cookie; under
        ``require`` an unbound one is refused once the grace after sign-in has passed.

        Raises:
            DeviceBindingRequired: It does not pass.
        """
        if session.device_key is None:
            if self.policy.mode == "require" and not self._settling(session):
                raise DeviceBindingRequired(
                    "This server requires sessions bound to the device (device-bound session "
                    "credentials), and this browser did not bind its session."
                )
            return
        if bound_cookie is None:
            if self._settling(session):  # sent while the browser's registration was in flight
                return
            raise DeviceBindingRequired
        expiry, _, mac = bound_cookie.partition(".")
        if not (expiry.isdigit() and len(expiry) <= 12 and len(mac) == _MAC_CHARS):
            raise DeviceBindingRequired
        if int(expiry) <= self._now().timestamp():
            raise DeviceBindingRequired
        if not hmac.compare_digest(mac, self._mac(session.device_key, int(expiry))):
            raise DeviceBindingRequired
