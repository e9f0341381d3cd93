"""Password reset and email verification end to end: Chromium, ``velvetrope serve``, and
a real SMTP server (aiosmtpd) that the server mails through.

A person signs up, opens the verification link from their inbox, later forgets the
password, follows the reset link, and signs in with the new one, while a phone that
was signed in is signed out by the reset; then changes the password on the account
page. The links are read out of the delivered mail, as a person would click them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import (
    ACTION_TIMEOUT_MS,
    DESKTOP,
    PASSWORD,
    SERVER_ENV,
    Screenshots,
    new_email,
    sign_in,
    sign_up,
)
from tests.support.server import ServerProcess, Servers
from tests.support.smtp import SmtpServer, link_in

pytestmark = pytest.mark.browser

NEW_PASSWORD = "a brand new passphrase for the browser"
NEWER_PASSWORD = "and yet another passphrase, typed"


@dataclass(frozen=True)
class MailSite:
    """``velvetrope serve`` mailing through ``smtp``, in one browser credential mode."""

    mode: str
    url: str
    server: ServerProcess
    smtp: SmtpServer


@pytest.fixture(scope="module", params=["session", "jwt-cookie"])
def mail_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MailSite]:
    mode = str(request.param)
    workdir = tmp_path_factory.mktemp(f"mail-{mode}")
    with SmtpServer() as smtp:
        servers = Servers(workdir)
        env = {
            **SERVER_ENV,
            "VELVETROPE_BROWSER_CREDENTIALS": mode,
            "VELVETROPE_SMTP_URL": smtp.url(),
            "VELVETROPE_MAIL_FROM": "velvetrope <no-reply@example.com>",
        }
        server = servers.start(Path(workdir) / "vr.db", env=env)
        assert server.base_url is not None
        try:
            yield MailSite(mode, server.base_url, server, smtp)
        finally:
            servers.stop_all()


def _context(browser: Browser, site: MailSite) -> BrowserContext:
    opened = browser.new_context(base_url=site.url, viewport=DESKTOP)
    opened.set_default_timeout(ACTION_TIMEOUT_MS)
    return opened


@pytest.fixture
def laptop(browser: Browser, mail_site: MailSite) -> Iterator[BrowserContext]:
    opened = _context(browser, mail_site)
    yield opened
    opened.close()


@pytest.fixture
def phone(browser: Browser, mail_site: MailSite) -> Iterator[BrowserContext]:
    opened = _context(browser, mail_site)
    yield opened
    opened.close()


def open_link(page: Page, site: MailSite, email: str, count: int, path: str) -> None:
    """Wait for mail number ``count`` to ``email`` and open its link to ``path``."""
    link = link_in(site.smtp.inbox.wait_for(email, count, timeout=20), path)
    assert link.startswith(site.url + path)
    page.goto(link)


def test_RESET_12_VERIFY_06_reset_and_verification_through_smtp_in_chromium(
    laptop: BrowserContext, phone: BrowserContext, mail_site: MailSite, screenshots: Screenshots
) -> None:
    page = laptop.new_page()
    email = new_email()
    sign_up(page, email)
    expect(page.locator("dd", has_text="Not verified yet")).to_be_visible()
    if mail_site.mode == "session":
        page.screenshot(path=screenshots.directory / "account-unverified.png")

    # The sign-up mail's link: opening it shows a button; pressing it verifies.
    open_link(page, mail_site, email, 1, "/email/verify")
    page.get_by_role("button", name="Confirm my address").click()
    expect(page.get_by_role("heading", name="Address verified")).to_be_visible()
    page.goto("/account")
    expect(page.locator(".badge", has_text="Verified")).to_be_visible()

    # Another device signs in; then the password is forgotten.
    phone_page = phone.new_page()
    sign_in(phone_page, email)
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url("**/signin?notice=signed-out")
    page.get_by_role("link", name="Forgot your password?").click()
    page.fill("#email", email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    page.goto("/password/forgot")
    if mail_site.mode == "session":
        page.screenshot(path=screenshots.directory / "forgot-password.png", full_page=True)

    open_link(page, mail_site, email, 2, "/password/reset")
    page.fill("#new_password", NEW_PASSWORD)
    if mail_site.mode == "session":
        page.screenshot(path=screenshots.directory / "reset-password.png", full_page=True)
    page.get_by_role("button", name="Set the new password").click()
    page.wait_for_url(re.compile(r"/signin\?notice=password-reset$"))
    expect(page.get_by_role("status")).to_contain_text("Your password is reset")
    notice = mail_site.smtp.inbox.wait_for(email, 3, timeout=20)
    assert notice["Subject"] == "Your velvetrope password was reset"

    # The reset signed the phone out; the old password no longer works, the new one does.
    phone_page.goto("/account")
    expect(phone_page).to_have_url(re.compile(r"/signin"))
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("form button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("incorrect")
    sign_in(page, email, NEW_PASSWORD)

    # The same link again: refused.
    open_link(page, mail_site, email, 2, "/password/reset")
    page.fill("#new_password", "the attacker's own passphrase")
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()

    # The account page's own form: current password and a new one.
    page.goto("/account")
    page.fill("#current_password", NEW_PASSWORD)
    page.fill("#new_password", NEWER_PASSWORD)
    if mail_site.mode == "session":
        page.screenshot(path=screenshots.directory / "account-password.png", full_page=True)
    page.get_by_role("button", name="Change password").click()
    if mail_site.mode == "session":
        page.wait_for_url(re.compile(r"/account\?notice=password-changed$"))
        expect(page.get_by_role("status")).to_contain_text("Your password is changed")
    else:
        page.wait_for_url(re.compile(r"/signin\?notice=password-changed-signin$"))
        sign_in(page, email, NEWER_PASSWORD)
    assert page.evaluate("document.cookie") == ""  # every credential stays HttpOnly
