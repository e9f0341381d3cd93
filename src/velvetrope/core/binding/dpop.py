"""DPoP (RFC 9449): access and refresh tokens bound to a key the client holds.

A client signs a fresh *proof* (``typ: dpop+jwt``, its public key in the ``jwk``
header) for every request: the method (``htm``) and URL (``htu``) it is for, when
(``iat``), a unique id (``jti``) and, next to an access token, the token's hash
(``ath``). The token endpoint binds what it issues to the proof's key (``cnf.jkt``);
from then on the token is worthless without a proof signed by that key.

:meth:`DPoPProofs.verify` runs the checks of section 4.3, in order: the proof's form
and signature through the one JOSE module (:func:`~velvetrope.core.tokens.codec.decode_proof`:
asymmetric ``alg`` only, a public ``jwk`` of the right type); ``htm``; ``htu`` against
the URL on the server's configured public origin (normalised, without query or
fragment, never taken from ``Host``); ``iat`` within :attr:`DPoPPolicy.window` (and at
most :attr:`DPoPPolicy.skew` ahead); the server's nonce when
:attr:`DPoPPolicy.nonce` is on (section 8); ``ath``; the key the token is bound to;
and last, that the ``jti`` was never seen before: the id is put once into
``stores.one_time`` (shared by every node, kept until the proof would be stale anyway),
so a proof replayed to any node is refused (section 11.1). A bounded in-process cache
sits in front (:mod:`velvetrope.core.binding.replay`): replays to this process are
refused without a store write, and with ``replay_scope="process"`` (one process over a
store nobody else verifies against) first uses are not written to the store at all.

Nonces are stateless: an HMAC under a secret every node shares over the number of the
current period (:attr:`DPoPPolicy.nonce_period`); the previous period's nonce is still
accepted, so a rotation never fails a request in flight.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from velvetrope.clock import Clock, system_clock
from velvetrope.core.binding.replay import DEFAULT_REPLAY_CACHE_SIZE, ReplayCache, ReplayScope
from velvetrope.core.events import SecurityEvents
from velvetrope.core.tokens import codec
from velvetrope.core.tokens.claims import numeric_date, text_claim
from velvetrope.core.tokens.codec import PROOF_ALGORITHMS, ProofAlgorithm
from velvetrope.errors import InvalidDPoPProof, InvalidToken, UseDPoPNonce
from velvetrope.stores.protocols import OneTimeStore

__all__ = [
    "DPOP_TYP",
    "DPoPMode",
    "DPoPPolicy",
    "DPoPProofs",
    "VerifiedProof",
    "access_token_hash",
    "dpop_challenge",
    "normalise_htu",
]

DPOP_TYP = "dpop+jwt"
DPoPMode = Literal["off", "allow", "require"]
NONCE_SECRET_NAME = "dpop-nonce-v1"  # noqa: S105 - the name of a stored secret
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


@dataclass(frozen=True, slots=True)
class DPoPPolicy:
    """How DPoP is used.

    Attributes:
        mode: ``off`` (proofs ignored, tokens stay bearer), ``allow`` (a client that
            sends a proof gets bound tokens; bearer clients keep working) or
            ``require`` (every token is bound; bearer tokens are refused).
        window: How old a proof's ``iat`` may be.
        skew: How far ahead of our clock a proof's ``iat`` may be.
        nonce: Whether proofs must carry the server's current nonce (section 8).
        nonce_period: How long one nonce is current (the previous one still passes).
        algorithms: The proof algorithms accepted (asymmetric only).
        replay_scope: Where a proof's first use is decided: ``shared`` (the store
            every node shares, behind this process's cache) or ``process`` (only this
            process verifies proofs against the store; see
            :mod:`velvetrope.core.binding.replay`).
        replay_cache_size: Spent proof ids kept in this process.
    """

    mode: DPoPMode = "allow"
    window: timedelta = timedelta(seconds=60)
    skew: timedelta = timedelta(seconds=5)
    nonce: bool = False
    nonce_period: timedelta = timedelta(minutes=5)
    algorithms: tuple[ProofAlgorithm, ...] = PROOF_ALGORITHMS
    replay_scope: ReplayScope = "shared"
    replay_cache_size: int = DEFAULT_REPLAY_CACHE_SIZE

    def __post_init__(self) -> None:
        if self.replay_cache_size < 1:
            raise ValueError("the DPoP replay cache needs room for at least one entry")
        if not timedelta(seconds=1) <= self.window <= timedelta(minutes=10):
            raise ValueError("the DPoP proof window must be between 1 second and 10 minutes")
        if not timedelta(0) <= self.skew <= timedelta(minutes=1):
            raise ValueError("the DPoP clock skew must be between 0 and 60 seconds")
        if self.nonce_period < timedelta(seconds=10):
            raise ValueError("the DPoP nonce period must be at least 10 seconds")
        if not self.algorithms or set(self.algorithms) - set(PROOF_ALGORITHMS):
            raise ValueError(f"DPoP algorithms must be among {', '.join(PROOF_ALGORITHMS)}")

    @property
    def enabled(self) -> bool:
        """Whether proofs are read at all."""
        return self.mode != "off"


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """A proof that passed every check.

    Attributes:
        jkt: The RFC 7638 thumbprint of its key (what tokens are bound to).
        jti: Its unique id (now spent).
    """

    jkt: str
    jti: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def access_token_hash(token: str) -> str:
    """``ath``: base64url of the SHA-256 of the access token's ASCII (section 4.2)."""
    return _b64(hashlib.sha256(token.encode("ascii", "replace")).digest())


def _escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(0)[1:], 16))
    return char if char in _UNRESERVED else match.group(0).upper()


@functools.lru_cache(maxsize=1024)  # the same few URLs on every request; bounded
def normalise_htu(url: str) -> str | None:
    """``url`` as ``htu`` is compared (RFC 3986 sections 6.2.2 and 6.2.3): lower-case scheme
    and host, no default port, upper-case escapes, unreserved characters unescaped, an
    empty path as ``/``, no query and no fragment; ``None`` if it is no http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}{_ESCAPE.sub(_escape, parts.path or '/')}"


def dpop_challenge(algorithms: tuple[str, ...] = PROOF_ALGORITHMS, error: str | None = None) -> str:
    """The ``WWW-Authenticate`` challenge of the DPoP scheme (section 7.1)."""
    algs = f'algs="{" ".join(algorithms)}"'
    return f'DPoP error="{error}", {algs}' if error else f"DPoP {algs}"


def _number(claims: dict[str, Any], name: str) -> float:
    try:
        return numeric_date(claims, name)
    except InvalidToken as exc:
        raise InvalidDPoPProof(exc.reason) from None


def _text(claims: dict[str, Any], name: str) -> str:
    try:
        return text_claim(claims, name)
    except InvalidToken as exc:
        raise InvalidDPoPProof(exc.reason) from None


class DPoPProofs:
    """Verifies DPoP proofs and issues nonces; the replay cache is ``stores.one_time``."""

    def __init__(
        self,
        one_time: OneTimeStore,
        policy: DPoPPolicy | None = None,
        *,
        events: SecurityEvents | None = None,
        now: Clock = system_clock,
    ) -> None:
        self.policy = policy or DPoPPolicy()
        self._one_time = one_time
        self.replays = ReplayCache(
            one_time, scope=self.policy.replay_scope, max_entries=self.policy.replay_cache_size
        )
        self._events = events or SecurityEvents()
        self._now = now
        self._secret: bytes | None = None
        self._refused = self.challenge("invalid_dpop_proof")

    def use_secret(self, secret: bytes) -> None:
        """Set the nonce secret every node shares (``AuthService.start`` does)."""
        if len(secret) < 32:
            raise ValueError("the DPoP nonce secret must be at least 32 bytes")
        self._secret = secret

    def challenge(self, error: str | None = None) -> str:
        """The DPoP ``WWW-Authenticate`` challenge with this policy's algorithms."""
        return dpop_challenge(self.policy.algorithms, error)

    def _period(self) -> int:
        return int(self._now().timestamp() // self.policy.nonce_period.total_seconds())

    def _nonce_for(self, period: int) -> str:
        if self._secret is None:
            raise RuntimeError("DPoP nonces need the shared secret; start the service first")
        raw = period.to_bytes(8, "big")
        mac = hmac.new(self._secret, b"dpop-nonce\x00" + raw, hashlib.sha256).digest()[:16]
        return _b64(raw + mac)

    def nonce(self) -> str:
        """The current nonce (``DPoP-Nonce``)."""
        return self._nonce_for(self._period())

    def _nonce_ok(self, value: object) -> bool:
        if not isinstance(value, str) or len(value) != 32:
            return False
        current = self._period()
        return any(hmac.compare_digest(value, self._nonce_for(p)) for p in (current, current - 1))

    async def verify(
        self,
        proof: str,
        *,
        htm: str,
        htu: str,
        access_token: str | None = None,
        bound_to: str | None = None,
    ) -> VerifiedProof:
        """Check a proof for this request and spend its ``jti``.

        Args:
            proof: The ``DPoP`` header's value.
            htm: The request's method.
            htu: The request's URL on the public origin (query and fragment ignored).
            access_token: The token it travels with, whose hash ``ath`` must be.
            bound_to: The thumbprint the token (or refresh family) is bound to; the
                proof's key must be that key.

        Raises:
            InvalidDPoPProof: A check failed (``reason`` says which).
            UseDPoPNonce: Nonces are on and the proof lacks the current one.
            InvalidToken: The proof is fine but signed by another key than the token's.
            StoreUnavailable: The replay cache did not answer (fail closed).
        """
        try:
            return await self._verify(proof, htm, htu, access_token, bound_to)
        except UseDPoPNonce as exc:
            raise exc.challenged(self.challenge("use_dpop_nonce")) from None
        except InvalidDPoPProof as exc:
            self._events.emit("dpop_proof_refused", reason=exc.reason)
            raise exc.challenged(self._refused) from None
        except InvalidToken as exc:
            self._events.emit("dpop_proof_refused", reason=exc.reason)
            raise exc.challenged(self.challenge("invalid_token")) from None

    async def _verify(
        self, proof: str, htm: str, htu: str, access_token: str | None, bound_to: str | None
    ) -> VerifiedProof:
        try:
            decoded = codec.decode_proof(proof, typ=DPOP_TYP, algorithms=self.policy.algorithms)
        except InvalidToken as exc:
            raise InvalidDPoPProof(exc.reason) from None
        claims = decoded.claims
        jti = _text(claims, "jti")
        if _text(claims, "htm") != htm:
            raise InvalidDPoPProof("htm does not match")
        expected = normalise_htu(htu)
        if expected is None or normalise_htu(_text(claims, "htu")) != expected:
            raise InvalidDPoPProof("htu does not match")
        iat, now = _number(claims, "iat"), self._now()
        if iat < (now - self.policy.window).timestamp():
            raise InvalidDPoPProof("iat too old")
        if iat > (now + self.policy.skew).timestamp():
            raise InvalidDPoPProof("iat in the future")
        if self.policy.nonce and not self._nonce_ok(claims.get("nonce")):
            raise UseDPoPNonce(self.nonce())
        if access_token is not None and "ath" not in claims:
            raise InvalidDPoPProof("ath missing")
        if access_token is not None and not hmac.compare_digest(
            str(claims["ath"]), access_token_hash(access_token)
        ):
            raise InvalidDPoPProof("ath does not match")
        if bound_to is not None and not hmac.compare_digest(decoded.thumbprint, bound_to):
            raise InvalidToken("key binding")
        key = hashlib.sha256(f"{decoded.thumbprint}\x00{jti}".encode()).hexdigest()
        until = now + self.policy.window + self.policy.skew
        if not await self.replays.spend(f"dpop:{key}", now=now, expires_at=until):
            raise InvalidDPoPProof("replayed jti")
        return VerifiedProof(decoded.thumbprint, jti)
