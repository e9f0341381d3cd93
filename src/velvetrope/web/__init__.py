"""The ASGI layer: app factory, routes, middleware, transports, error mapping."""

from velvetrope.web.app import create_app
from velvetrope.web.extension import Velvetrope
from velvetrope.web.transports import CookieTransport

__all__ = ["CookieTransport", "Velvetrope", "create_app"]
