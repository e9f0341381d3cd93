"""CSRF-09: no state change on a safe method; the route audit."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from tests.web.csrf.helpers import MODES, UNSAFE, Browser, password_unchanged
from velvetrope import AuthService, Velvetrope, create_app

# --- CSRF-09: no state change on a safe method ------------------------------------------------


def routes_of(app: FastAPI) -> list[tuple[str, frozenset[str]]]:
    """Every route of ``app`` (through included routers): its path and its methods."""
    found: list[tuple[str, frozenset[str]]] = []

    def walk(routes: Any) -> None:
        for route in routes:
            if hasattr(route, "effective_route_contexts"):  # FastAPI's included routers
                walk(route.effective_route_contexts())
            elif hasattr(route, "routes") and not getattr(route, "methods", None):
                walk(route.routes)  # a plain Router or Mount with routes of its own
            elif getattr(route, "methods", None):
                found.append((route.path, frozenset(route.methods)))

    walk(app.routes)
    return found


def route_table(app: FastAPI) -> dict[str, set[str]]:
    """Each path with every method some route answers on it."""
    table: dict[str, set[str]] = {}
    for path, methods in routes_of(app):
        table.setdefault(path, set()).update(methods)
    return table


UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
MUTATING_API = {
    "/auth/register",
    "/auth/login",
    "/auth/logout",
    "/auth/logout-all",
    "/auth/reauth",
    "/auth/password",
    "/auth/sessions/{handle}",
    "/auth/token",
    "/auth/revoke",
}


@pytest.mark.parametrize("mode", MODES)
def test_CSRF_09_route_audit_no_route_mixes_safe_and_unsafe_methods(vr: Velvetrope) -> None:
    """A handler that answers GET and POST alike would let a link do what a form does."""
    app = create_app(velvetrope=vr)
    table = route_table(app)
    documented = {
        (path, method.upper())
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    walked = {(path, method) for path, methods in table.items() for method in methods}
    assert documented <= walked, "the audit must see every route"
    for path, methods in routes_of(app):
        if methods & UNSAFE_METHODS:
            assert not methods & {"GET", "HEAD"}, f"{path} answers {sorted(methods)}"
    for path in MUTATING_API | ({"/auth/refresh"} if vr.browser.jwt_cookies else set()):
        assert table[path], path
        assert table[path] <= UNSAFE_METHODS, f"{path} answers {sorted(table[path])}"


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_09_every_safe_route_changes_nothing_when_called_cross_site(
    browser: Browser, vr: Velvetrope, service: AuthService
) -> None:
    """Call every GET route (and HEAD, OPTIONS) as a signed-in browser from another site:
    the devices, the sign-in and the password stay as they were."""
    table = route_table(create_app(velvetrope=vr))
    safe = sorted(p for p, m in table.items() if m & {"GET", "HEAD"} and "{" not in p)
    assert {"/auth/me", "/auth/csrf", "/auth/sessions"} <= set(safe)
    before = await browser.state(credentials_only=True)
    for path in safe:
        for method in ("GET", "HEAD", "OPTIONS"):
            response = await browser.http.request(
                method,
                path,
                headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
            )
            assert response.status_code < 500, (method, path, response.text)
    assert await browser.state(credentials_only=True) == before
    assert await password_unchanged(service, browser.email)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["logout", "logout-all", "reauth", "password", "end-session"])
@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE"])
async def test_CSRF_09_mutating_endpoints_do_nothing_on_safe_methods(
    browser: Browser, name: str, method: str
) -> None:
    before = await browser.state()
    path = UNSAFE[name][1].format(other=browser.other)
    response = await browser.http.request(method, path, headers=browser.headers())
    assert response.status_code == 405
    assert await browser.state() == before
