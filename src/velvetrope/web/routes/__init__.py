"""HTTP routes, each module one area of the API; handlers are plain functions."""

from velvetrope.web.routes.accounts import build_accounts_router
from velvetrope.web.routes.auth import build_auth_router
from velvetrope.web.routes.dbsc import build_dbsc_router
from velvetrope.web.routes.gateway import build_gateway_router
from velvetrope.web.routes.health import build_health_router
from velvetrope.web.routes.tokens import build_token_router

__all__ = [
    "build_accounts_router",
    "build_auth_router",
    "build_dbsc_router",
    "build_gateway_router",
    "build_health_router",
    "build_token_router",
]
