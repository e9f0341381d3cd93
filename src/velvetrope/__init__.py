"""velvetrope: session, JWT and hybrid authentication for ASGI apps, and an auth server."""

__version__ = "0.1.0"

from velvetrope.clock import Clock, FrozenClock, system_clock
from velvetrope.core.passwords import PasswordHasher, PasswordPolicy
from velvetrope.core.principal import Principal
from velvetrope.core.ratelimit import ThrottlePolicy
from velvetrope.core.service import AuthService, SignIn
from velvetrope.core.sessions import IssuedSession, SessionPolicy
from velvetrope.errors import (
    AccountDisabled,
    AuthError,
    ConfigurationError,
    EmailTaken,
    InvalidCredentials,
    InvalidEmail,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    ReauthRequired,
    SessionExpired,
    SessionInvalid,
    SessionNotFound,
    StoreUnavailable,
    TooManyAttempts,
    UserNotFound,
    WeakPassword,
)
from velvetrope.settings import Settings
from velvetrope.stores import MemoryStores, SQLiteStores, open_stores
from velvetrope.web import CookieTransport, Velvetrope, create_app

__all__ = [
    "AccountDisabled",
    "AuthError",
    "AuthService",
    "Clock",
    "ConfigurationError",
    "CookieTransport",
    "EmailTaken",
    "FrozenClock",
    "InvalidCredentials",
    "InvalidEmail",
    "InvalidInput",
    "IssuedSession",
    "MemoryStores",
    "NotAuthenticated",
    "NotFound",
    "PasswordHasher",
    "PasswordPolicy",
    "Principal",
    "ReauthRequired",
    "SQLiteStores",
    "SessionExpired",
    "SessionInvalid",
    "SessionNotFound",
    "SessionPolicy",
    "Settings",
    "SignIn",
    "StoreUnavailable",
    "ThrottlePolicy",
    "TooManyAttempts",
    "UserNotFound",
    "Velvetrope",
    "WeakPassword",
    "__version__",
    "create_app",
    "open_stores",
    "system_clock",
]
