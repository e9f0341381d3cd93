"""Liveness and readiness for load balancers, with the state of this node's caches."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse

from velvetrope.core.service import AuthService
from velvetrope.stores import CachedSessionStore, SessionCacheStatus

__all__ = ["build_health_router"]


def build_health_router(service: AuthService) -> APIRouter:
    """``GET /health`` (the process answers) and ``GET /ready`` (its stores answer)."""
    router = APIRouter(tags=["health"])

    @router.get("/health", summary="Liveness")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @router.get("/ready", summary="Readiness: the stores answer", responses={503: {}})
    async def ready() -> JSONResponse:
        await service.stores.ping()  # StoreUnavailable -> 503 store_unavailable
        staleness = service.tokens.revocations.staleness()
        sessions = service.stores.sessions
        return JSONResponse(
            {
                "status": "ready",
                # How old this node's copy of the revocation feed is (bounded staleness).
                "revocations_age_seconds": None
                if staleness is None
                else round(staleness.total_seconds(), 3),
                "push": service.stores.notifier is not None,
                # null for backends without one (memory, SQLite: lookups are local).
                "session_cache": _session_cache(sessions.status())
                if isinstance(sessions, CachedSessionStore)
                else None,
            }
        )

    return router


def _session_cache(status: SessionCacheStatus) -> dict[str, object]:
    """The session near-cache's state: in use only while its push subscription is up."""
    return {
        "enabled": status.enabled,
        "push_connected": status.push_connected,
        "max_staleness_seconds": status.max_staleness.total_seconds(),
        "entries": status.entries,
        "hits": status.hits,
        "misses": status.misses,
    }
