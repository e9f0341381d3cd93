"""The ASGI layer: app factory, routes, middleware, ways in, error mapping."""

from velvetrope.web.app import create_app
from velvetrope.web.backends import AuthBackend, Authenticator
from velvetrope.web.extension import Velvetrope
from velvetrope.web.guard import AuthMiddleware
from velvetrope.web.transports import (
    BearerTransport,
    BoundCookieTransport,
    CookieTransport,
    DPoPTransport,
    Transport,
)

__all__ = [
    "AuthBackend",
    "AuthMiddleware",
    "Authenticator",
    "BearerTransport",
    "BoundCookieTransport",
    "CookieTransport",
    "DPoPTransport",
    "Transport",
    "Velvetrope",
    "create_app",
]
