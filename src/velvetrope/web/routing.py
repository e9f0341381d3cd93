"""Keep velvetrope's routes off the path of every other request.

FastAPI (0.116 and later) no longer copies an included router's routes into the app:
it asks the included router, level by level, whether a request is one of its routes.
For a path that is none of velvetrope's, that walk visits every one of them, through
three levels of included routers: measured in process (FastAPI 0.165), 100 to 150 µs
of every request to a route of your own declared after ``install(app)``, whether or
not it is protected, several times what the check itself costs
(``benchmarks/inprocess.py`` measures the check).

A :class:`PathGate` holds a router whose routes all lie under a known set of first
path segments (``/auth``, ``/.well-known``, ...) and answers "not mine" at once for
any other path: one split and one set lookup. Routing stays FastAPI's own (OpenAPI,
``url_path_for``, 405s, trailing-slash redirects), and on a FastAPI that copies routes
at include time the gate is never asked and costs nothing either.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter
from starlette.routing import Match
from starlette.types import Scope

__all__ = [
    "AUTH_SEGMENTS",
    "HEALTH_SEGMENTS",
    "PAGE_SEGMENTS",
    "PathGate",
    "first_segment",
    "route_path",
]

AUTH_SEGMENTS = ("/auth", "/.well-known")
"""Where ``Velvetrope.router`` serves: ``/auth/*`` and ``/.well-known/jwks.json``."""

HEALTH_SEGMENTS = ("/health", "/ready")
"""Where the health router serves."""

PAGE_SEGMENTS = ("/", "/account", "/email", "/password", "/signin", "/signup")
"""Where the browser pages serve (``/`` is the home page, which sends to one of them)."""


def route_path(scope: Scope) -> str:
    """The path the app routes on: without ``root_path`` (uvicorn --root-path, Mount)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path


def first_segment(scope: Scope) -> str:
    """The first segment of :func:`route_path`: ``/auth`` for ``/auth/login``, ``/`` for
    ``/``."""
    path = route_path(scope)
    end = path.find("/", 1)
    return path if end < 0 else path[:end]


class PathGate(APIRouter):
    """A router that includes ``router`` and is asked about no path outside ``segments``.

    Every route of ``router`` must lie under one of ``segments`` (a route elsewhere
    would never be found; the test suite requests every route velvetrope installs).
    Include the gate where ``router`` would have been included, without a prefix.
    """

    def __init__(self, router: APIRouter, segments: Iterable[str]) -> None:
        super().__init__()
        self.segments = frozenset(segments)
        if not self.segments or any(not s.startswith("/") for s in self.segments):
            raise ValueError(f"path segments start with '/': {sorted(self.segments)!r}")
        self.include_router(router)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """``Match.NONE`` at once for a path under none of the segments; else FastAPI's
        own match over the included routes."""
        if first_segment(scope) not in self.segments:
            return Match.NONE, {}
        return super().matches(scope)
