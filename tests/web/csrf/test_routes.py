"""CSRF-09: no state change on a safe method; the route audit, walked from the app itself."""

from __future__ import annotations

import pytest
from fastapi import Depends

from tests.support.services import asgi_client
from tests.web.csrf.helpers import (
    CROSS_SITE,
    MODES,
    SAME_ORIGIN,
    SERVER_ROUTES,
    TOKEN_FREE,
    UNSAFE,
    UNSAFE_METHODS,
    UNSAFE_ONLY_PATHS,
    Browser,
    Mode,
    assert_csrf_refusal,
    fill,
    is_page,
    password_unchanged,
    route_table,
    routes_of,
    sign_in,
    unsafe_routes,
)
from velvetrope import AuthService, Principal, Velvetrope, create_app

# --- CSRF-09: no state change on a safe method ------------------------------------------------


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
    for _, path in unsafe_routes(app):
        if not is_page(path):  # a page may show its form on GET and take it on POST
            assert table[path] <= UNSAFE_METHODS, f"{path} answers {sorted(table[path])}"


@pytest.mark.parametrize("mode", MODES)
def test_CSRF_09_the_refusal_tests_cover_every_unsafe_route_of_the_app(
    vr: Velvetrope, mode: Mode
) -> None:
    """The refusal tests are parametrised by walking the app (``SERVER_ROUTES``), so a new
    unsafe route is refused-tested without anyone listing it. This pins that walk: it is
    the app's own list, it reaches the pages, the token-free allowlist names real routes
    only, and every API route a cookie authenticates has a request in ``UNSAFE``."""
    derived = unsafe_routes(create_app(velvetrope=vr))
    assert [tuple(p.values[1:]) for p in SERVER_ROUTES if p.values[0] == mode] == derived
    assert any(is_page(path) for _, path in derived), "the walk must reach the pages"
    assert any(path.startswith("/auth/") for _, path in derived)
    if mode == "session":
        assert set(TOKEN_FREE) <= set(derived), "an allowlisted route no longer exists"
    listed = {(method, path) for method, path, _ in UNSAFE.values()}
    unlisted = [
        (method, path)
        for method, path in derived
        if not is_page(path) and (method, path) not in TOKEN_FREE.keys() | listed
    ]
    assert not unlisted, f"add a request for each to UNSAFE: {unlisted}"


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_09_a_route_added_to_the_app_later_is_walked_and_refused(
    vr: Velvetrope, user_email: str
) -> None:
    """Routes added after ``create_app`` (an app's own, here behind ``Depends(vr.principal)``)
    are in the walk, and the refusals hold for them as for velvetrope's own."""
    app = create_app(velvetrope=vr)

    @app.post("/later/{item}")
    # Not Annotated[...]: with postponed annotations FastAPI resolves names in the
    # module's globals, and ``vr`` is local to this test.
    async def later(item: str, who: Principal = Depends(vr.principal)) -> dict[str, str]:  # noqa: B008
        return {"item": item, "user": who.user_id}

    assert ("POST", "/later/{item}") in unsafe_routes(app)
    async with asgi_client(app) as http:
        token = await sign_in(http, user_email)
        refused = [
            await http.post("/later/x", headers=SAME_ORIGIN),
            await http.post("/later/x", headers={**CROSS_SITE, "X-CSRF-Token": token}),
        ]
        for response in refused:
            assert_csrf_refusal(response)
        done = await http.post("/later/x", headers={**SAME_ORIGIN, "X-CSRF-Token": token})
        assert done.json()["item"] == "x", done.text


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


@pytest.mark.parametrize(("mode", "path"), UNSAFE_ONLY_PATHS)
async def test_CSRF_09_mutating_endpoints_do_nothing_on_safe_methods(
    browser: Browser, path: str
) -> None:
    """Every path of the app that only changes things (walked from it)."""
    before = await browser.state()
    for method in ("GET", "HEAD", "OPTIONS", "TRACE"):
        response = await browser.http.request(
            method, fill(path, browser), headers=browser.headers()
        )
        assert response.status_code == 405, (method, response.text)
    assert await browser.state() == before
