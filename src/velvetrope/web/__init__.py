"""The ASGI layer: app factory, routes, middleware, transports, error mapping."""

from velvetrope.web.app import create_app
from velvetrope.web.extension import Velvetrope
from velvetrope.web.guard import AuthMiddleware
from velvetrope.web.transports import BearerTransport, CookieTransport

__all__ = ["AuthMiddleware", "BearerTransport", "CookieTransport", "Velvetrope", "create_app"]
