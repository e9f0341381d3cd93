"""velvetrope: session, JWT and hybrid authentication for ASGI apps, and an auth server."""

from velvetrope._version import __version__
from velvetrope.clock import Clock, FrozenClock, system_clock
from velvetrope.core.binding.dbsc import SessionBindingPolicy
from velvetrope.core.binding.dpop import DPoPPolicy
from velvetrope.core.credentials import Presented
from velvetrope.core.devices import Device
from velvetrope.core.hooks import AccountEvent, Hooks
from velvetrope.core.passwords import PasswordHasher, PasswordPolicy
from velvetrope.core.principal import Principal
from velvetrope.core.ratelimit import ThrottlePolicy
from velvetrope.core.service import AuthService, SignIn
from velvetrope.core.sessions import IssuedSession, SessionPolicy
from velvetrope.core.strategies import (
    AccessTokenStrategy,
    DeviceBoundSessionStrategy,
    SessionStrategy,
    Strategy,
)
from velvetrope.core.tokens.access import TokenPolicy
from velvetrope.core.tokens.claims import AccessClaims
from velvetrope.core.tokens.service import TokenPair
from velvetrope.errors import (
    AccountDisabled,
    AuthError,
    ConfigurationError,
    DeviceBindingRequired,
    DPoPNonceRequired,
    DPoPProofRefused,
    EmailTaken,
    InvalidClaims,
    InvalidCredentials,
    InvalidDeviceProof,
    InvalidDPoPProof,
    InvalidEmail,
    InvalidGrant,
    InvalidInput,
    InvalidToken,
    NotAuthenticated,
    NotFound,
    ReauthRequired,
    RefreshTokenReused,
    SessionExpired,
    SessionInvalid,
    SessionNotFound,
    StoreUnavailable,
    TooManyAttempts,
    UnsupportedGrantType,
    UseDPoPNonce,
    UserNotFound,
    WeakPassword,
)
from velvetrope.settings import Settings
from velvetrope.stores import MemoryStores, SQLiteStores, open_stores
from velvetrope.web import (
    AuthBackend,
    AuthMiddleware,
    BearerTransport,
    CookieTransport,
    DPoPTransport,
    Transport,
    Velvetrope,
    create_app,
)

__all__ = [
    "AccessClaims",
    "AccessTokenStrategy",
    "AccountDisabled",
    "AccountEvent",
    "AuthBackend",
    "AuthError",
    "AuthMiddleware",
    "AuthService",
    "BearerTransport",
    "Clock",
    "ConfigurationError",
    "CookieTransport",
    "DPoPNonceRequired",
    "DPoPPolicy",
    "DPoPProofRefused",
    "DPoPTransport",
    "Device",
    "DeviceBindingRequired",
    "DeviceBoundSessionStrategy",
    "EmailTaken",
    "FrozenClock",
    "Hooks",
    "InvalidClaims",
    "InvalidCredentials",
    "InvalidDPoPProof",
    "InvalidDeviceProof",
    "InvalidEmail",
    "InvalidGrant",
    "InvalidInput",
    "InvalidToken",
    "IssuedSession",
    "MemoryStores",
    "NotAuthenticated",
    "NotFound",
    "PasswordHasher",
    "PasswordPolicy",
    "Presented",
    "Principal",
    "ReauthRequired",
    "RefreshTokenReused",
    "SQLiteStores",
    "SessionBindingPolicy",
    "SessionExpired",
    "SessionInvalid",
    "SessionNotFound",
    "SessionPolicy",
    "SessionStrategy",
    "Settings",
    "SignIn",
    "StoreUnavailable",
    "Strategy",
    "ThrottlePolicy",
    "TokenPair",
    "TokenPolicy",
    "TooManyAttempts",
    "Transport",
    "UnsupportedGrantType",
    "UseDPoPNonce",
    "UserNotFound",
    "Velvetrope",
    "WeakPassword",
    "__version__",
    "create_app",
    "open_stores",
    "system_clock",
]
