"""Liveness and readiness for load balancers, with the state of this node's caches."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import JSONResponse

from velvetrope.core.capacity import cache_limits
from velvetrope.core.gateway import GatewayStatus
from velvetrope.stores.records import SessionCacheStatus
from velvetrope.web.context import Ctx, WebContext

__all__ = ["build_health_router"]

routes = APIRouter(tags=["health"])


@routes.get("/health", summary="Liveness")
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@routes.get("/ready", summary="Readiness: the stores answer", responses={503: {}})
async def ready(ctx: Ctx) -> JSONResponse:
    status = await ctx.service.status()  # StoreUnavailable -> 503 store_unavailable
    age = status.revocations_age
    return JSONResponse(
        {
            "status": "ready",
            # How old this node's copy of the revocation feed is (bounded staleness).
            "revocations_age_seconds": None if age is None else round(age.total_seconds(), 3),
            "push": status.push,
            # null for backends without one (memory, SQLite: lookups are local).
            "session_cache": None
            if status.session_cache is None
            else _session_cache(status.session_cache),
            # null when the hybrid gateway is off.
            "gateway": None if ctx.gateway is None else _gateway(ctx.gateway.status()),
            # Every in-process cache and queue of the hot path, with its bound.
            "caches": cache_limits(ctx.service),
        }
    )


def _gateway(status: GatewayStatus) -> dict[str, object]:
    """The mint cache's size and hit ratio, and the tokens this node signed."""
    cache = status.cache
    ratio = cache.hit_ratio
    return {
        "minted": status.minted,
        "push_connected": status.push_connected,
        "mint_cache": {
            "enabled": cache.enabled,
            "entries": cache.entries,
            "max_entries": cache.max_entries,
            "hits": cache.hits,
            "misses": cache.misses,
            "hit_ratio": None if ratio is None else round(ratio, 4),
            "evictions": cache.evictions,
        },
    }


def _session_cache(status: SessionCacheStatus) -> dict[str, object]:
    """The session near-cache's state: in use only while its push subscription is up."""
    return {
        "enabled": status.enabled,
        "push_connected": status.push_connected,
        "max_staleness_seconds": status.max_staleness.total_seconds(),
        "entries": status.entries,
        "hits": status.hits,
        "misses": status.misses,
        "max_entries": status.max_entries,
    }


def build_health_router(ctx: WebContext) -> APIRouter:
    """``GET /health`` (the process answers) and ``GET /ready`` (its stores answer)."""
    router = APIRouter(dependencies=[Depends(ctx.bind)])
    router.include_router(routes)
    return router
