"""The exceptions velvetrope raises, each with a stable machine ``code``.

Every error a caller can meet derives from :class:`AuthError`. The web layer maps
each class to an HTTP status in one table (``velvetrope.web.errors``); core code
never knows about HTTP.

::

    AuthError
    ├── InvalidInput                 invalid_request      (bad shape or value)
    │   ├── InvalidEmail             invalid_email
    │   └── WeakPassword             weak_password
    ├── EmailTaken                   email_taken
    ├── InvalidCredentials           invalid_credentials
    ├── AccountDisabled              account_disabled
    ├── NotAuthenticated             not_authenticated
    │   ├── SessionInvalid           session_invalid
    │   ├── SessionExpired           session_expired
    │   ├── DeviceBindingRequired    device_binding_required (bound session, no bound cookie)
    │   └── InvalidToken             invalid_token        (uniform; reason only in logs)
    │       ├── InvalidDPoPProof     invalid_dpop_proof   (RFC 9449 section 7.1; says which check)
    │       │   └── OriginalUriMissing gateway_uri_missing (the edge sent no original URI)
    │       └── UseDPoPNonce         use_dpop_nonce       (carries the nonce to use)
    ├── OAuthError                   (token endpoint, RFC 6749 section 5.2)
    │   ├── InvalidGrant             invalid_grant
    │   │   └── RefreshTokenReused   invalid_grant        (theft detected; family revoked)
    │   ├── UnsupportedGrantType     unsupported_grant_type
    │   ├── DPoPProofRefused         invalid_dpop_proof   (RFC 9449 section 5)
    │   └── DPoPNonceRequired        use_dpop_nonce       (RFC 9449 section 8; carries it)
    ├── InvalidDeviceProof           invalid_device_proof (a DBSC proof that fails)
    ├── CsrfFailed                   csrf_failed
    ├── ReauthRequired               reauth_required
    ├── NotFound                     not_found
    │   ├── UserNotFound             user_not_found
    │   └── SessionNotFound          session_not_found
    ├── TooManyAttempts              too_many_attempts    (carries retry_after)
    │   └── HashingBusy              hashing_busy         (503: the password-hash queue is full)
    ├── ConfigurationError           configuration_error
    │   └── InvalidClaims            invalid_claims       (the app's claims hook broke a rule)
    ├── StoreUnavailable             store_unavailable    (fail closed)
    ├── InvalidLink                  invalid_link         (a mailed link: unknown, used, expired)
    ├── MailUnavailable              mail_unavailable     (no SMTP server, or it refused)
    └── GatewayAudienceUnknown       gateway_audience_unknown (the proxy named no such service)
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

__all__ = [
    "AccountDisabled",
    "AuthError",
    "ConfigurationError",
    "CsrfFailed",
    "DPoPNonceRequired",
    "DPoPProofRefused",
    "DeviceBindingRequired",
    "EmailTaken",
    "GatewayAudienceUnknown",
    "HashingBusy",
    "InvalidClaims",
    "InvalidCredentials",
    "InvalidDPoPProof",
    "InvalidDeviceProof",
    "InvalidEmail",
    "InvalidGrant",
    "InvalidInput",
    "InvalidLink",
    "InvalidToken",
    "MailUnavailable",
    "NotAuthenticated",
    "NotFound",
    "OAuthError",
    "OriginalUriMissing",
    "ReauthRequired",
    "RefreshTokenReused",
    "SessionExpired",
    "SessionInvalid",
    "SessionNotFound",
    "StoreUnavailable",
    "TooManyAttempts",
    "UnsupportedGrantType",
    "UseDPoPNonce",
    "UserNotFound",
    "WeakPassword",
]


class AuthError(Exception):
    """Root of every velvetrope error.

    Attributes:
        code: A stable, machine-readable identifier (``snake_case``).
        detail: One human sentence. Never contains a secret.
    """

    code: ClassVar[str] = "auth_error"
    default_detail: ClassVar[str] = "The request could not be authenticated."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, detail={self.detail!r})"


class InvalidInput(AuthError):
    """The request's data has the wrong shape or an unacceptable value."""

    code = "invalid_request"
    default_detail = "The request is not valid."


class InvalidEmail(InvalidInput):
    """The email address is not a valid address."""

    code = "invalid_email"
    default_detail = "The email address is not valid."


class WeakPassword(InvalidInput):
    """The password fails the password policy (length, blocklist)."""

    code = "weak_password"
    default_detail = "The password does not meet the password policy."


class EmailTaken(AuthError):
    """An account with this email address already exists."""

    code = "email_taken"
    default_detail = "An account with this email address already exists."


class InvalidCredentials(AuthError):
    """Unknown email or wrong password; deliberately does not say which."""

    code = "invalid_credentials"
    default_detail = "The email address or password is incorrect."


class AccountDisabled(AuthError):
    """The account exists and the password was right, but it is disabled."""

    code = "account_disabled"
    default_detail = "This account is disabled."


class NotAuthenticated(AuthError):
    """No credential was presented, or it is not one this server accepts.

    Attributes:
        challenge: The RFC 7235 challenge(s) for ``WWW-Authenticate``, set by the way
            in that refused (or by the check, naming every way in); ``None`` lets the
            web layer send its default.
    """

    code = "not_authenticated"
    default_detail = "You are not signed in."
    challenge: str | None = None

    def challenged(self, challenge: str | None) -> NotAuthenticated:
        """Set :attr:`challenge` and return this error (``raise exc.challenged(...)``)."""
        self.challenge = challenge
        return self


class SessionInvalid(NotAuthenticated):
    """The presented session ID is malformed, unknown or ended."""

    code = "session_invalid"
    default_detail = "The session is not valid; please sign in again."


class SessionExpired(NotAuthenticated):
    """The session passed its idle timeout or its absolute lifetime."""

    code = "session_expired"
    default_detail = "The session has expired; please sign in again."


class InvalidToken(NotAuthenticated):
    """The bearer token is malformed, forged, expired, revoked or not for us.

    Clients get one uniform answer (JWT-19); ``reason`` is for logs and tests only.
    """

    code = "invalid_token"
    default_detail = "The access token is not valid."

    def __init__(self, reason: str = "invalid") -> None:
        self.reason = reason
        super().__init__()


class DeviceBindingRequired(NotAuthenticated):
    """The session is bound to a device (DBSC) and the request lacks its valid bound
    cookie, or an unbound session where binding is required."""

    code = "device_binding_required"
    default_detail = (
        "This session is bound to the device that signed in; the request did not prove it. "
        "Sign in again from this browser."
    )


_MALFORMED_PROOF = (
    "The DPoP proof is malformed; send one compact JWS (base64url header.payload.signature) "
    "whose header and payload are JSON objects."
)
_BAD_PROOF_KEY = "The DPoP proof's jwk is not a valid public key of the type its alg needs."

# What a client is told for each reason a proof fails (DPOP-12): a fixed sentence per
# check, never the proof's own text. Reasons are exact, or a prefix (``signature: ...``).
_PROOF_PROBLEMS: dict[str, str] = {
    "proof required": "This server requires DPoP: send a DPoP proof header.",
    "one DPoP header needed": "Send exactly one DPoP header.",
    "htm does not match": "The DPoP proof's htm is not this request's method.",
    "htu does not match": (
        "The DPoP proof's htu is not this request's URL on this server's public origin."
    ),
    "iat too old": (
        "The DPoP proof's iat is too old; sign a fresh proof for every request "
        "and check the client's clock."
    ),
    "iat in the future": "The DPoP proof's iat is in the future; check the client's clock.",
    "iat is not a number": "The DPoP proof's iat must be a number of seconds since the epoch.",
    "iat is out of range": "The DPoP proof's iat must be a number of seconds since the epoch.",
    "replayed jti": (
        "This DPoP proof was already used; sign a new proof, with a new jti, for every request."
    ),
    "ath missing": (
        "The DPoP proof has no ath; a proof sent with an access token must carry its hash."
    ),
    "ath does not match": "The DPoP proof's ath is not the hash of the access token sent with it.",
    "alg not allowed": (
        "The DPoP proof's alg is not allowed; sign it with an asymmetric algorithm this "
        "server accepts (the algs of its DPoP challenge)."
    ),
    "wrong typ": "The DPoP proof's typ header must be dpop+jwt.",
    "no jwk": "The DPoP proof's header must carry its public key as jwk.",
    "jwk holds private key material": (
        "The DPoP proof's jwk holds private key material; send the public key only."
    ),
    "RSA key too small": "The DPoP proof's RSA key is shorter than 2048 bits.",
    "too large": _MALFORMED_PROOF,
    "not a compact JWS": _MALFORMED_PROOF,
    "segment too large": _MALFORMED_PROOF,
    "bad base64url": _MALFORMED_PROOF,
    "bad base64url length": _MALFORMED_PROOF,
    "non-canonical base64url": _MALFORMED_PROOF,
    "byte order mark": _MALFORMED_PROOF,
    "not a JSON object": _MALFORMED_PROOF,
    **{
        f"{name} is not {what}": f"The DPoP proof's {name} must be a string."
        for name in ("jti", "htm", "htu")
        for what in ("a string", "valid text")
    },
}
_PROOF_PROBLEM_PREFIXES: tuple[tuple[str, str], ...] = (
    ("signature", "The DPoP proof's signature does not verify with the key in its jwk header."),
    ("header member not allowed", "The DPoP proof's header may hold only alg, typ and jwk."),
    ("jwk", _BAD_PROOF_KEY),
    ("not JSON", _MALFORMED_PROOF),
)


class InvalidDPoPProof(InvalidToken):
    """A DPoP proof that fails a check of RFC 9449 section 4.3 (at a protected resource).

    ``reason`` says which check, for logs and tests; ``detail`` is the fixed sentence
    the client gets for that check (DPOP-12), never an echo of the proof.
    """

    code = "invalid_dpop_proof"
    default_detail = "The DPoP proof is not valid."

    def __init__(self, reason: str = "invalid") -> None:
        super().__init__(reason)
        self.detail = self.sentence_for(reason)
        self.args = (self.detail,)

    @classmethod
    def sentence_for(cls, reason: str) -> str:
        """The sentence a client is told for ``reason`` (the default for an unknown one)."""
        found = _PROOF_PROBLEMS.get(reason)
        if found is not None:
            return found
        return next(
            (said for prefix, said in _PROOF_PROBLEM_PREFIXES if reason.startswith(prefix)),
            cls.default_detail,
        )


class UseDPoPNonce(InvalidToken):
    """The proof lacks the server's current nonce (RFC 9449 section 8).

    Attributes:
        nonce: The nonce to put in the next proof (sent as ``DPoP-Nonce``).
    """

    code = "use_dpop_nonce"
    default_detail = "Sign the DPoP proof again with the nonce in the DPoP-Nonce header."

    def __init__(self, nonce: str) -> None:
        self.nonce = nonce
        super().__init__("nonce required")


class OAuthError(AuthError):
    """An error of the OAuth 2.0 token endpoint; its body also carries ``error_description``."""

    code = "invalid_request"
    default_detail = "The token request is not valid."


class InvalidGrant(OAuthError):
    """The credentials or refresh token are invalid, expired, revoked or reused."""

    code = "invalid_grant"
    default_detail = "The grant is invalid, expired or revoked."


class RefreshTokenReused(InvalidGrant):
    """A refresh token was presented again after it was rotated: its family is revoked.

    Attributes:
        family_id: The revoked family.
    """

    default_detail = "The refresh token was already used; the session has been revoked."

    def __init__(self, family_id: str) -> None:
        self.family_id = family_id
        super().__init__()


class UnsupportedGrantType(OAuthError):
    """``grant_type`` is not ``password`` or ``refresh_token``."""

    code = "unsupported_grant_type"
    default_detail = "Use grant_type=password or grant_type=refresh_token."


class DPoPProofRefused(OAuthError):
    """The token endpoint's DPoP proof is missing where required, or fails a check
    (``detail``: the sentence of :class:`InvalidDPoPProof` for that check)."""

    code = "invalid_dpop_proof"
    default_detail = "The DPoP proof is not valid."

    @classmethod
    def for_reason(cls, reason: str) -> DPoPProofRefused:
        """The refusal for a proof that failed the check ``reason`` names (DPOP-12)."""
        return cls(InvalidDPoPProof.sentence_for(reason))


class DPoPNonceRequired(OAuthError):
    """The token endpoint wants its nonce in the proof (RFC 9449 section 8).

    Attributes:
        nonce: The nonce to use (sent as ``DPoP-Nonce``).
    """

    code = "use_dpop_nonce"
    default_detail = "Sign the DPoP proof again with the nonce in the DPoP-Nonce header."

    def __init__(self, nonce: str) -> None:
        self.nonce = nonce
        super().__init__()


class InvalidDeviceProof(AuthError):
    """A device-bound session's proof (a ``dbsc+jwt``) is malformed, forged or stale.

    ``reason`` is for logs and tests; clients get one sentence.
    """

    code = "invalid_device_proof"
    default_detail = "The device proof is not valid."

    def __init__(self, reason: str = "invalid") -> None:
        self.reason = reason
        super().__init__()


class CsrfFailed(AuthError):
    """An unsafe request that a browser marks cross-site, or that comes from another origin."""

    code = "csrf_failed"
    default_detail = (
        "Cross-site requests that change state are refused; send them from the "
        "configured origin (VELVETROPE_PUBLIC_ORIGIN)."
    )


class ReauthRequired(AuthError):
    """The action needs a recent sign-in; re-enter the password first."""

    code = "reauth_required"
    default_detail = "This action needs a recent sign-in; confirm your password first."


class NotFound(AuthError):
    """The named thing does not exist (or is not yours)."""

    code = "not_found"
    default_detail = "Not found."


class UserNotFound(NotFound):
    """No user with that id or email."""

    code = "user_not_found"
    default_detail = "No such user."


class SessionNotFound(NotFound):
    """No session with that handle belongs to the current user."""

    code = "session_not_found"
    default_detail = "No such session."


class TooManyAttempts(AuthError):
    """Sign-in is throttled for this account or address.

    Attributes:
        retry_after: How long until the next attempt is allowed.
    """

    code = "too_many_attempts"
    default_detail = "Too many failed sign-in attempts; try again later."

    def __init__(self, retry_after: timedelta, detail: str | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(detail)


class ConfigurationError(AuthError):
    """A setting is invalid; the message says which and why."""

    code = "configuration_error"
    default_detail = "The configuration is not valid."


class InvalidClaims(ConfigurationError):
    """The application's claims hook failed, or returned claims that are not allowed
    (a reserved name, not JSON, over the size cap); nothing was issued."""

    code = "invalid_claims"
    default_detail = "The application's claims could not be issued."


class StoreUnavailable(AuthError):
    """A backing store did not answer; requests fail closed."""

    code = "store_unavailable"
    default_detail = "The authentication store is unavailable; try again shortly."


# --- load (issue 13) -------------------------------------------------------------------


class HashingBusy(TooManyAttempts):
    """The password-hash queue is full, or a check waited too long for a worker (503).

    Not the client's doing: the server sheds sign-in work so authenticated requests
    keep their CPU. Answered with ``Retry-After``.
    """

    code = "hashing_busy"
    default_detail = "The server is busy checking passwords; try again shortly."


# --- account lifecycle: links sent by mail -----------------------------------------------


class InvalidLink(AuthError):
    """A password-reset or email-verification link that is unknown, used, expired, or
    no longer matches the account (its password or address changed since it was sent).

    One answer for every case; ``reason`` is for logs and tests only.
    """

    code = "invalid_link"
    default_detail = "This link is not valid: it was already used, it has expired, or it is wrong."

    def __init__(self, reason: str = "invalid") -> None:
        self.reason = reason
        super().__init__()


class MailUnavailable(AuthError):
    """Mail cannot be sent: no SMTP server is configured, or it did not take the message.

    ``reason`` (for logs only) says what the server or the connection answered.
    """

    code = "mail_unavailable"
    default_detail = "Mail cannot be sent right now; try again shortly."

    def __init__(self, detail: str | None = None, *, reason: str = "") -> None:
        self.reason = reason
        super().__init__(detail)


# --- the hybrid gateway (issue 10) ---------------------------------------------------


class GatewayAudienceUnknown(AuthError):
    """The proxy asked the edge check for a token for a service that is not configured."""

    code = "gateway_audience_unknown"
    default_detail = (
        "The proxy must name a configured audience in X-Velvetrope-Audience "
        "(VELVETROPE_GATEWAY_AUDIENCES)."
    )


class OriginalUriMissing(InvalidDPoPProof):
    """A DPoP caller at the edge check, and the proxy sent no usable original URI: the
    proof's ``htu`` cannot be checked, so it is refused (the proxy is misconfigured)."""

    code = "gateway_uri_missing"
    default_detail = (
        "The proxy must send the original URI (nginx: X-Original-URI, Caddy: "
        "X-Forwarded-Uri) for a DPoP proof to be checked."
    )
