"""``/docs`` in Chromium with every request off this server refused: Swagger UI renders
from the installed package, under its CSP, and lists the API (checklist OPS-D1)."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import ConsoleMessage, Page, Route

from tests.browser.conftest import Screenshots, Site


def test_OPS_D1_docs_render_with_no_network_beyond_the_server(
    page: Page, site: Site, screenshots: Screenshots
) -> None:
    server = urlsplit(site.url).netloc
    elsewhere: list[str] = []
    problems: list[str] = []

    def only_this_server(route: Route) -> None:
        if urlsplit(route.request.url).netloc == server:
            route.continue_()
        else:  # what a machine without internet access would see
            elsewhere.append(route.request.url)
            route.abort()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.route("**/*", only_this_server)
    page.on("console", on_console)
    page.goto("/docs")
    page.locator(".swagger-ui .info .title").wait_for()
    assert "velvetrope" in page.locator(".swagger-ui .info .title").inner_text()
    assert page.locator(".opblock-summary-path", has_text="/auth/login").count() >= 1
    assert elsewhere == []
    assert not [p for p in problems if "Content Security Policy" in p], problems
    page.screenshot(path=screenshots.directory / f"docs-{site.mode}.png", animations="disabled")
