"""The pages in a real Chromium, against ``velvetrope serve``, in both credential modes.

A person signs up, signs in, sees their devices and signs out; scripts cannot read the
credential; a page on another origin cannot change anything; one browser signs another
out; wrong passwords and throttling show up as clear errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Response, expect

from tests.browser.conftest import (
    PASSWORD,
    Attacker,
    Screenshots,
    Site,
    new_email,
    sign_in,
    sign_up,
)

pytestmark = pytest.mark.browser


def credentials(context: BrowserContext, site: Site) -> dict[str, str]:
    """The credential cookies the browser holds now, by name."""
    return {
        c["name"]: c["value"] for c in context.cookies() if c["name"] in site.credential_cookies
    }


def device_handles(page: Page) -> list[str]:
    """The handles in the account page's device list (from each sign-out form)."""
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/account$"))
    actions = page.locator("li.device form").evaluate_all("forms => forms.map(f => f.action)")
    return [re.sub(r".*/devices/([^/]+)/signout$", r"\1", action) for action in actions]


def is_post_to(url: str) -> Callable[[Response], bool]:
    return lambda response: response.url == url and response.request.method == "POST"


class WireStatuses:
    """The status of every response the page received, as the network saw it.

    Playwright reports no response for a cross-origin ``fetch`` that CORS then hides
    from the page; Chrome's DevTools protocol still sees the status on the wire.
    """

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self._page = page
        self._urls: dict[str, str] = {}
        self._statuses: dict[str, int] = {}
        self._cdp = context.new_cdp_session(page)
        self._cdp.on("Network.requestWillBeSent", self._sent)
        self._cdp.on("Network.responseReceivedExtraInfo", self._received)
        self._cdp.send("Network.enable")

    def _sent(self, event: dict[str, Any]) -> None:
        self._urls[event["requestId"]] = event["request"]["url"]

    def _received(self, event: dict[str, Any]) -> None:
        self._statuses[event["requestId"]] = event["statusCode"]

    def status_of(self, url: str) -> int:
        """The status of the latest response from ``url`` (waits up to 5 s for it)."""
        for _ in range(50):
            found = [s for r, s in self._statuses.items() if self._urls.get(r) == url]
            if found:
                return found[-1]
            self._page.wait_for_timeout(100)
        pytest.fail(f"no response from {url} on the wire")


def test_sign_up_sign_in_see_this_device_sign_out_and_the_old_cookie_is_dead(
    site: Site, context: BrowserContext, page: Page, screenshots: Screenshots
) -> None:
    email = new_email()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/signin$"))  # "/" sends a stranger to sign in
    page.get_by_role("link", name="Create an account").click()
    expect(page).to_have_url(re.compile(r"/signup$"))
    screenshots.take(page, "signup", site)
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    page.locator("header").get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/signin\?notice=signed-out$"))

    sign_in(page, email)
    expect(page.locator(".facts dd").first).to_have_text(email)
    devices = page.locator("li.device")
    expect(devices).to_have_count(1)  # the first sign-in ended at sign-out
    expect(devices.first).to_contain_text("This device")
    expect(devices.first.locator(".device-name")).to_contain_text(
        re.compile(r"Chrome \d+ on Linux")
    )
    old = credentials(context, site)
    assert set(old) == set(site.credential_cookies)

    page.locator("header").get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/signin\?notice=signed-out$"))
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshots.take(page, "signin", site)
    assert credentials(context, site) == {}

    cookie = "; ".join(f"{name}={value}" for name, value in old.items())
    with site.http() as http:
        assert http.get("/auth/me", headers={"Cookie": cookie}).status_code == 401
        account = http.get("/account", headers={"Cookie": cookie})
        assert account.status_code == 303
        assert account.headers["location"] == "/signin?notice=expired"
        if site.mode == "jwt-cookie":  # the refresh cookie cannot bring the sign-in back
            assert http.post("/auth/refresh", headers={"Cookie": cookie}).status_code == 401
            renewed = http.get(
                "/",
                headers={
                    "Cookie": f"{site.credential_cookies[1]}={old[site.credential_cookies[1]]}"
                },
            )
            assert renewed.headers["location"] == "/signin"


def test_page_scripts_cannot_read_the_credential(
    site: Site, context: BrowserContext, page: Page
) -> None:
    sign_up(page, new_email())
    assert page.evaluate("document.cookie") == ""
    cookies = context.cookies()
    assert set(site.credential_cookies) <= {c["name"] for c in cookies}
    for cookie in cookies:
        assert cookie["httpOnly"], cookie
        assert cookie["secure"], cookie
        assert cookie["name"].startswith("__Host-"), cookie
        assert cookie["path"] == "/", cookie
        assert cookie["domain"] == "127.0.0.1", cookie  # host-only: no Domain attribute
        assert cookie["sameSite"] in ("Lax", "Strict"), cookie


def test_an_injected_script_does_not_run_on_the_pages(site: Site, page: Page) -> None:
    """Defence in depth: the CSP allows no script at all, inline or from this origin."""
    sign_up(page, new_email())
    ran = page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.injected = true";
            document.body.append(script);
            return window.injected === true;
        }"""
    )
    assert ran is False


ATTACKED = (
    "/account/signout-all",
    "/account/signout",
    "/account/devices/{handle}/signout",
    "/auth/logout-all",
    "/auth/logout",
)


def _attack_form(url: str) -> str:
    return (
        f'<form method="post" action="{url}"><input name="csrf_token" value="forged"></form>'
        "<script>document.forms[0].submit()</script>"
    )


FETCH = """async url => {
    try {
        const response = await fetch(url, {
            method: "POST",
            credentials: "include",
            body: new URLSearchParams({csrf_token: "forged"}),
        });
        return "read " + response.status;
    } catch (error) {
        return "blocked";
    }
}"""


@pytest.mark.parametrize("kind", ["form", "fetch"])
def test_a_page_on_another_origin_cannot_sign_the_victim_out(
    site: Site, context: BrowserContext, page: Page, attacker: Attacker, kind: str
) -> None:
    """127.0.0.1 on another port is same-site: the cookies go along, and are refused."""
    sign_up(page, new_email())
    before = device_handles(page)
    [handle] = before
    wire = WireStatuses(context, page)
    for path in ATTACKED:
        target = site.url + path.format(handle=handle)
        if kind == "form":
            page.goto(attacker.serve(_attack_form(target)))
            page.wait_for_url(target)
        else:
            page.goto(attacker.serve("<p>cute cats</p>"))
            assert page.evaluate(FETCH, target) == "blocked"  # and CORS hides the answer
        assert wire.status_of(target) == 403, path
        assert device_handles(page) == before, path  # still signed in, nothing ended


def test_signing_out_a_device_from_another_browser_ends_it(
    site: Site, page: Page, phone: BrowserContext, screenshots: Screenshots
) -> None:
    email = new_email()
    sign_up(page, email)
    mobile = phone.new_page()
    sign_in(mobile, email)
    expect(mobile.locator("li.device")).to_have_count(2)
    expect(mobile.locator("li.device.current")).to_contain_text(re.compile(r"Safari 18 on iOS"))
    screenshots.take(mobile, "account-phone", site)

    page.goto("/account")
    screenshots.take(page, "account", site)
    other = page.locator("li.device:not(.current)")
    expect(other).to_contain_text("Safari 18 on iOS")
    other.get_by_role("button").click()
    expect(page).to_have_url(re.compile(r"/account\?notice=device-signed-out$"))
    expect(page.get_by_role("status")).to_have_text("That device is signed out.")
    expect(page.locator("li.device")).to_have_count(1)

    mobile.goto("/account")
    expect(mobile).to_have_url(re.compile(r"/signin\?notice=expired$"))
    expect(mobile.get_by_role("status")).to_have_text("Your session has expired; sign in again.")
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/account$"))  # the browser that did it stays in


def test_a_wrong_password_then_too_many_attempts_are_shown(
    site: Site, page: Page, screenshots: Screenshots
) -> None:
    email = new_email()
    with site.http() as http:
        assert (
            http.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code
            == 201
        )
    page.goto("/signin")
    page.fill("#email", email)
    page.fill("#password", "not the right password")
    with page.expect_response(is_post_to(site.url + "/signin")) as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    expect(page.get_by_role("alert")).to_have_text("The email address or password is incorrect.")
    expect(page.locator("#email")).to_have_value(email)
    screenshots.take(page, "signin-error", site)

    statuses = []
    for _ in range(10):  # five free failures, then a back-off that doubles
        page.fill("#password", "still not the right password")
        with page.expect_response(is_post_to(site.url + "/signin")) as answer:
            page.get_by_role("button", name="Sign in").click()
        statuses.append(answer.value.status)
        if statuses[-1] == 429:
            break
    assert statuses[-1] == 429, statuses
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Too many failed sign-in attempts.")
    expect(alert).to_contain_text(re.compile(r"You can try again in \d+ seconds?\."))
    screenshots.take(page, "signin-throttled", site)


def test_signing_up_with_a_taken_email_says_so(site: Site, page: Page) -> None:
    email = new_email()
    with site.http() as http:
        assert (
            http.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code
            == 201
        )
    page.goto("/signup")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    with page.expect_response(is_post_to(site.url + "/signup")) as answer:
        page.get_by_role("button", name="Create account").click()
    assert answer.value.status == 409
    expect(page.get_by_role("alert")).to_have_text(
        "An account with this email address already exists."
    )
