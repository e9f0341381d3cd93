"""The app under benchmark: the velvetrope server plus routes with the same body.

``create_app(settings)`` builds exactly what ``velvetrope serve`` runs (the same
middleware, error handlers and lifespan); this factory adds

* ``GET /bench/open``: no authentication;
* ``GET /bench/floor``: behind a dependency that does nothing, with the signature of
  ``vr.principal``: what FastAPI charges for any dependency (the floor a
  ``Depends``-based check cannot go below);
* ``GET /bench/protected``: behind ``Depends(vr.principal)``, the per-request check;
* ``GET /bench/guarded``: behind :class:`velvetrope.AuthMiddleware` (the pure-ASGI
  guard, the documented hot-path integration) and no dependency at all: the handler
  is the open one, the middleware has already refused requests without a credential;
* ``GET /bench/both``: behind the middleware *and* ``Depends(vr.principal)``: the
  dependency finds the principal the middleware verified and checks nothing again, so
  this costs the guard plus an empty dependency.

All return the same small JSON body through the same response class, so the
difference in their throughput is the cost of the check alone. ``open`` and
``guarded`` are one route (``/bench/{kind}``, declared first), so the verdict's pair
pays exactly the same routing: the guard protects the path, the handler is the same.
The Depends routes follow, ``floor`` before ``protected`` and ``both``: a route
further down pays a failed match for each one above it (a few microseconds each),
which biases against the protected endpoints, never for them. The guard wraps the
whole app, so every request (open ones too) pays its path prefix test. Run it with
uvicorn's ``--factory`` flag; settings come from ``VELVETROPE_*`` (the store from
``VELVETROPE_DATABASE_URL``)::

    uvicorn velvetrope.lab.benchapp:build_app --factory
"""

# No `from __future__ import annotations`: FastAPI must resolve the dependency in
# `Current`, which refers to the local `vr`, when the route is declared.
import logging
from typing import Annotated, Final

from fastapi import Depends, FastAPI
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse

from velvetrope import AuthMiddleware, Principal, Settings, Velvetrope, create_app

__all__ = [
    "BODY",
    "BOTH_PATH",
    "FLOOR_PATH",
    "GUARDED_PATH",
    "OPEN_PATH",
    "PROTECTED_PATH",
    "build_app",
]

OPEN_PATH: Final = "/bench/open"
FLOOR_PATH: Final = "/bench/floor"
PROTECTED_PATH: Final = "/bench/protected"
GUARDED_PATH: Final = "/bench/guarded"
BOTH_PATH: Final = "/bench/both"

# Small and constant; built per response like an ordinary handler's would be.
BODY: Final = {"status": "ok", "items": [1, 2, 3], "note": "velvetrope benchmark"}


class _OpenOrGuarded(Convertor[str]):
    """The last path segment of the one route behind ``OPEN_PATH`` and ``GUARDED_PATH``."""

    regex = "open|guarded"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("vr_bench_kind", _OpenOrGuarded())


async def nothing(connection: HTTPConnection) -> None:
    """A dependency shaped like ``Velvetrope.principal`` that checks nothing."""


def build_app() -> FastAPI:
    """Return the velvetrope server app with the benchmark routes and the guard added.

    Raises:
        pydantic.ValidationError: A ``VELVETROPE_*`` variable is invalid.
        ConfigurationError, StoreUnavailable: The configured store cannot be opened.
    """
    settings = Settings()
    # As `velvetrope serve` does, so security events cost what they cost in production.
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s %(message)s"
    )
    app = create_app(settings)
    vr: Velvetrope = app.state.velvetrope
    Current = Annotated[Principal, Depends(vr.principal)]

    # OPEN_PATH and GUARDED_PATH: one route, no dependency and no parameter declared
    # (nothing to validate). AuthMiddleware has answered 401 already for a guarded
    # request without a principal (it is in `request.state` for handlers that want it).
    @app.get("/bench/{kind:vr_bench_kind}", include_in_schema=False)
    async def bench_open() -> JSONResponse:
        return JSONResponse(BODY)

    @app.get(FLOOR_PATH, include_in_schema=False)
    async def bench_floor(_nothing: Annotated[None, Depends(nothing)]) -> JSONResponse:
        return JSONResponse(BODY)

    @app.get(PROTECTED_PATH, include_in_schema=False)
    async def bench_protected(_principal: Current) -> JSONResponse:
        return JSONResponse(BODY)

    @app.get(BOTH_PATH, include_in_schema=False)
    async def bench_both(_principal: Current) -> JSONResponse:
        # Guarded and a dependency: the principal comes from the middleware's check.
        return JSONResponse(BODY)

    # `add_middleware` puts the guard outside create_app's RequestLimits and inside
    # Starlette's ServerErrorMiddleware and velvetrope's SecurityHeaders (which wraps
    # the built stack), so the guard's 401/503 answers get the same headers as the app's.
    app.add_middleware(AuthMiddleware, velvetrope=vr, protect=[GUARDED_PATH, BOTH_PATH])
    return app
