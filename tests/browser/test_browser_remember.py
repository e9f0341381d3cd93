"""Remember me in a real Chromium (LIB-05): the box unchecked, the sign-in ends when the
browser does; checked, it survives a restart of the browser.

Each test runs Chromium on a profile directory of its own (a persistent context), signs
in through the page, quits Chromium and starts it again on the same profile, as a person
closing and reopening the browser would.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Playwright, expect

from tests.browser.conftest import (
    ACTION_TIMEOUT_MS,
    DESKTOP,
    LAUNCH_ARGS,
    PASSWORD,
    Site,
    new_email,
    require_chromium,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium_on_profile(
    playwright: Playwright, site: Site, tmp_path: Path
) -> Callable[[], BrowserContext]:
    """Start Chromium on this test's profile directory (again and again)."""
    profile = tmp_path / "profile"

    def start() -> BrowserContext:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=require_chromium(),
            args=LAUNCH_ARGS,
            base_url=site.url,
            viewport=DESKTOP,
        )
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        return context

    return start


@pytest.mark.parametrize("remember", [False, True], ids=["unchecked", "checked"])
def test_LIB_05_remember_me_decides_whether_a_browser_restart_signs_you_out(
    site: Site, chromium_on_profile: Callable[[], BrowserContext], remember: bool
) -> None:
    email = new_email()
    with site.http() as http:
        created = http.post("/auth/register", json={"email": email, "password": PASSWORD})
        assert created.status_code == 201, created.text

    browser = chromium_on_profile()
    page = browser.new_page()
    page.goto("/signin")
    expect(page.get_by_label("Remember me on this device")).not_to_be_checked()
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    if remember:
        page.check("#remember")
    page.click("form button[type=submit]")
    page.wait_for_url("**/account")
    cookies = {c["name"]: c for c in browser.cookies()}
    for name in site.credential_cookies:
        # Playwright reports a browser-session cookie (no Max-Age, no Expires) as -1
        assert (cookies[name]["expires"] == -1) is (not remember), cookies[name]
    browser.close()  # the person quits the browser

    browser = chromium_on_profile()
    page = browser.new_page()
    page.goto("/account")
    if remember:
        expect(page).to_have_url(f"{site.url}/account")
        expect(page.get_by_text(email)).to_be_visible()
    else:
        expect(page).to_have_url(f"{site.url}/signin")
        assert not {c["name"] for c in browser.cookies()} & set(site.credential_cookies)
    browser.close()
