"""Liveness and readiness for load balancers."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import JSONResponse

from velvetrope.core.service import AuthService

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
        return JSONResponse(
            {
                "status": "ready",
                # How old this node's copy of the revocation feed is (bounded staleness).
                "revocations_age_seconds": None
                if staleness is None
                else round(staleness.total_seconds(), 3),
                "push": service.stores.notifier is not None,
            }
        )

    return router
