"""The form-field token through ``Depends(vr.principal)`` in an app of one's own (no
``OriginCheck`` middleware: the route-level checks are all there is)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from starlette.requests import Request

from tests.support.services import ORIGIN
from tests.web.csrf.helpers import (
    CROSS_SITE,
    FORGED,
    MODES,
    SAME_ORIGIN,
    Browser,
    Mode,
    assert_csrf_refusal,
    second_device,
    send,
    sign_in,
)
from velvetrope import AuthService, Principal, Velvetrope
from velvetrope.web.errors import install_error_handlers

# --- the form field, through Depends(vr.principal) in an app of one's own ---------------------


@pytest.fixture
async def own_app(vr: Velvetrope) -> AsyncIterator[httpx.AsyncClient]:
    """An app that includes ``vr.router`` and protects a form route with
    ``Depends(vr.principal)``; no OriginCheck middleware, so the route-level checks are
    all there is."""
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(vr.router)

    @app.post("/notes")
    # Not Annotated[...]: with postponed annotations FastAPI resolves names in the
    # module's globals, and ``vr`` is local to this fixture.
    async def notes(request: Request, who: Principal = Depends(vr.principal)) -> JSONResponse:  # noqa: B008
        form = parse_qsl((await request.body()).decode())  # python-multipart is not a dependency
        return JSONResponse({"user": who.user_id, "fields": sorted(form)})

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        yield http


@pytest.fixture
async def own_browser(
    own_app: httpx.AsyncClient, service: AuthService, user_email: str, mode: Mode
) -> Browser:
    handle, alive = await second_device(service, user_email, mode)
    return Browser(own_app, await sign_in(own_app, user_email), user_email, handle, alive)


@pytest.mark.parametrize("mode", MODES)
async def test_a_form_field_token_passes_and_the_route_gets_the_whole_form(
    own_browser: Browser,
) -> None:
    form = {"title": "groceries", "body": "milk & eggs = 2 €", "csrf_token": own_browser.token}
    response = await own_browser.http.post("/notes", data=form, headers=SAME_ORIGIN)
    assert response.status_code == 200, response.text
    assert response.json()["fields"] == sorted([list(item) for item in form.items()])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("form", "headers"),
    [
        pytest.param({"title": "x"}, SAME_ORIGIN, id="no token"),
        pytest.param({"title": "x", "csrf_token": FORGED}, SAME_ORIGIN, id="forged field"),
        pytest.param("mine", CROSS_SITE, id="cross-site with the token"),
        pytest.param("mine", {"Referer": "https://evil.example/"}, id="foreign referer"),
        pytest.param("mine", {}, id="no origin at all"),
        pytest.param("twice", SAME_ORIGIN, id="field twice"),
        pytest.param("bad header", SAME_ORIGIN, id="bad header beats a good field"),
    ],
)
async def test_a_form_without_a_good_token_or_from_elsewhere_is_refused(
    own_browser: Browser, form: dict[str, str] | str, headers: dict[str, str]
) -> None:
    before = await own_browser.state()
    content = None
    data: dict[str, str] | None = None
    request_headers = dict(headers)
    if form == "mine":
        data = {"title": "x", "csrf_token": own_browser.token}
    elif form == "twice":
        content = f"csrf_token={own_browser.token}&csrf_token={FORGED}".encode()
        request_headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif form == "bad header":
        data = {"title": "x", "csrf_token": own_browser.token}
        request_headers["X-CSRF-Token"] = FORGED
    else:
        assert isinstance(form, dict)
        data = form
    response = await own_browser.http.post(
        "/notes", data=data, content=content, headers=request_headers
    )
    assert_csrf_refusal(response)
    assert await own_browser.state() == before


@pytest.mark.parametrize("mode", MODES)
async def test_the_router_refuses_cross_site_requests_without_the_middleware(
    own_browser: Browser,
) -> None:
    """``vr.router`` carries its own origin check (no OriginCheck in this app)."""
    before = await own_browser.state()
    for name in ("logout", "logout-all"):
        response = await send(own_browser, name, {**CROSS_SITE, "X-CSRF-Token": own_browser.token})
        assert_csrf_refusal(response)
    assert await own_browser.state() == before
