"""What services behind the hybrid gateway drop in, to trust its internal tokens.

* :class:`InternalTokenVerifier` -- framework-free: the JWKS cache and every check;
* :class:`InternalAuthMiddleware` (ASGI) and :class:`InternalAuth` (a FastAPI
  dependency);
* :class:`WSGIInternalAuth` -- Flask, Django and any WSGI app;
* :class:`RevokedSessions` -- optional: listen to velvetrope's revocation pushes (Redis
  or PostgreSQL) so a revoked session's tokens die at once, not at their ``exp``.

This package never imports :mod:`velvetrope.web` (a service needs none of the server).
"""

from velvetrope.core.gateway.claims import INTERNAL_TYP, InternalClaims
from velvetrope.integrations.asgi import (
    CLAIMS_KEY,
    InternalAuth,
    InternalAuthError,
    InternalAuthMiddleware,
)
from velvetrope.integrations.revocations import RevokedSessions
from velvetrope.integrations.verifier import InternalTokenVerifier, parse_jwks
from velvetrope.integrations.wsgi import ENVIRON_KEY, WSGIInternalAuth

__all__ = [
    "CLAIMS_KEY",
    "ENVIRON_KEY",
    "INTERNAL_TYP",
    "InternalAuth",
    "InternalAuthError",
    "InternalAuthMiddleware",
    "InternalClaims",
    "InternalTokenVerifier",
    "RevokedSessions",
    "WSGIInternalAuth",
    "parse_jwks",
]
