"""velvetrope's routes stay off the path of every other request (``web/routing.py``).

FastAPI asks an included router about every request that reaches it; without the gate
a request to a route of your own declared after ``install(app)`` walked every route
velvetrope installs (100 to 150 µs of each request here). These tests count the walk.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match

from velvetrope import Velvetrope
from velvetrope.testing import app_client, new_user, settings_for_tests, sign_in
from velvetrope.web.app import create_app
from velvetrope.web.routing import (
    AUTH_SEGMENTS,
    HEALTH_SEGMENTS,
    PAGE_SEGMENTS,
    PathGate,
    first_segment,
)


def _paths(routes: list[BaseRoute]) -> Iterator[str]:
    """Every route path under ``routes``, through included routers on any FastAPI."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # FastAPI 0.116+: an included router, not copied
            for context in contexts():
                yield str(context.path_format)
        elif hasattr(route, "path"):
            yield str(route.path)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the velvetrope routes FastAPI tried to match, as it tries them."""
    tried: list[str] = []
    real = APIRoute.matches

    def matches(self: APIRoute, scope: Any) -> tuple[Match, Any]:
        if self.path.startswith(("/auth", "/.well-known", "/account", "/sign", "/health")):
            tried.append(self.path)
        return real(self, scope)

    monkeypatch.setattr(APIRoute, "matches", matches)
    return tried


def test_every_route_velvetrope_serves_lies_under_its_gates_segments() -> None:
    settings = settings_for_tests(gateway_audiences="orders")
    app = create_app(settings)
    declared = set(AUTH_SEGMENTS + HEALTH_SEGMENTS + PAGE_SEGMENTS) | {"/static", "/docs"}
    served = {first_segment({"path": path}) for path in _paths(app.router.routes)}
    assert served - {"/openapi.json"} <= declared
    assert {"/auth", "/.well-known", "/signin", "/health"} <= served


async def test_a_route_of_your_own_after_install_walks_none_of_velvetropes(
    counted: list[str],
) -> None:
    auth = Velvetrope(settings_for_tests())
    app = FastAPI()
    auth.install(app, pages=True)

    @app.get("/orders")
    async def orders() -> dict[str, str]:
        return {"ok": "yes"}

    async with app_client(app) as client:
        counted.clear()
        assert (await client.get("/orders")).status_code == 200
        assert counted == []  # not one of velvetrope's routes was asked
        assert (await client.get("/signin")).status_code == 200
        await sign_in(client, await new_user(client))
        counted.clear()
        assert (await client.get("/auth/me")).status_code == 200  # still found
        assert "/auth/me" in counted
        assert (await client.get("/nowhere")).status_code == 404


async def test_the_server_answers_its_own_paths_through_the_gates(counted: list[str]) -> None:
    app = create_app(settings_for_tests())
    async with app_client(app) as client:
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/.well-known/jwks.json")).status_code == 200
        assert (await client.post("/auth/me")).status_code == 405  # FastAPI's own 405
        counted.clear()
        assert (await client.get("/docs")).status_code == 200
        assert counted == []


def test_first_segment_is_taken_after_the_root_path() -> None:
    assert first_segment({"path": "/auth/login"}) == "/auth"
    assert first_segment({"path": "/"}) == "/"
    assert first_segment({"path": "/signin"}) == "/signin"
    assert first_segment({"path": "/api/auth/me", "root_path": "/api"}) == "/auth"
    assert first_segment({"path": "/api", "root_path": "/api"}) == "/"


def test_a_gate_needs_absolute_segments() -> None:
    from fastapi import APIRouter  # noqa: PLC0415

    with pytest.raises(ValueError, match="start with '/'"):
        PathGate(APIRouter(), ["auth"])
    with pytest.raises(ValueError, match="start with '/'"):
        PathGate(APIRouter(), [])
