"""The account-lifecycle pages without a browser: forgot, reset and verify by link, and
the account page's password and verification forms, in both browser credential modes.

Mail goes over real SMTP to aiosmtpd; the links are read out of the delivered mail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.support.services import ORIGIN, PASSWORD
from tests.support.smtp import SmtpServer, mailed_token, mailing_service
from tests.web.test_pages import SAME_ORIGIN, Visitor, token_in
from velvetrope import AuthService, FrozenClock, PasswordHasher, Settings, Velvetrope, create_app
from velvetrope.stores import Stores

NEW_PASSWORD = "a brand new passphrase for ann"


@pytest.fixture(params=["session", "jwt-cookie"])
def settings(request: pytest.FixtureRequest) -> Settings:
    return Settings(
        database_url="memory://",
        public_origin=ORIGIN,
        browser_credentials=request.param,
        _env_file=None,
    )


@pytest.fixture
def mode(settings: Settings) -> str:
    return settings.browser_credentials


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
async def service(
    stores: Stores, clock: FrozenClock, hasher: PasswordHasher, smtp: SmtpServer
) -> AsyncIterator[AuthService]:
    started = await mailing_service(stores, smtp, clock=clock, hasher=hasher)
    yield started
    await started.accounts.outbox.aclose()


@pytest.fixture
def ann(bare_client: httpx.AsyncClient, mode: str) -> Visitor:
    return Visitor(bare_client, mode)


@pytest.fixture
async def signed_up(ann: Visitor) -> Visitor:
    response = await ann.sign_up("ann@example.com")
    assert response.status_code == 303, response.text
    return ann


@pytest.fixture
async def ann_phone(vr: Velvetrope, mode: str) -> AsyncIterator[Visitor]:
    transport = httpx.ASGITransport(app=create_app(velvetrope=vr), client=("198.51.100.9", 5555))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        yield Visitor(http, mode)


async def can_sign_in(service: AuthService, email: str, password: str) -> bool:
    try:
        await service.users.authenticate(email, password)
    except Exception:  # noqa: BLE001 - any refusal is "no"
        return False
    return True


async def ask_for_reset(ann: Visitor, email: str) -> httpx.Response:
    token = await ann.form_token("/password/forgot")
    return await ann.post("/password/forgot", {"csrf_token": token, "email": email})


# --- RESET-09: the reset pages -------------------------------------------------------------------


async def test_RESET_09_forgot_page_mail_link_and_new_password(
    ann: Visitor, service: AuthService, smtp: SmtpServer
) -> None:
    await service.register("ann@example.com", PASSWORD)
    signin = await ann.http.get("/signin")
    assert 'href="/password/forgot"' in signin.text
    answer = await ask_for_reset(ann, "ann@example.com")
    assert answer.status_code == 202
    assert "Check your inbox" in answer.text
    token = await mailed_token(service, smtp, "ann@example.com", "/password/reset")
    for _ in range(2):  # opening the link (a mail scanner, a preview) spends nothing
        form = await ann.http.get(f"/password/reset?token={token}")
        assert form.status_code == 200
        assert f'name="token" value="{token}"' in form.text
    data = {"csrf_token": token_in(form.text), "token": token, "new_password": NEW_PASSWORD}
    done = await ann.post("/password/reset", data)
    assert (done.status_code, done.headers["location"]) == (303, "/signin?notice=password-reset")
    notice = await ann.http.get(done.headers["location"])
    assert "Your password is reset" in notice.text
    signed_in = await ann.sign_in("ann@example.com", NEW_PASSWORD)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/account"


async def test_RESET_09_the_answer_page_is_the_same_for_an_unknown_address(
    ann: Visitor, service: AuthService
) -> None:
    await service.register("ann@example.com", PASSWORD)
    known = await ask_for_reset(ann, "ann@example.com")
    unknown = await ask_for_reset(ann, "nobody@example.com")
    assert (known.status_code, known.text) == (unknown.status_code, unknown.text)


async def test_RESET_09_a_reset_form_without_its_presession_token_is_refused(
    ann: Visitor, service: AuthService, smtp: SmtpServer
) -> None:
    await service.register("ann@example.com", PASSWORD)
    await ask_for_reset(ann, "ann@example.com")
    token = await mailed_token(service, smtp, "ann@example.com", "/password/reset")
    for csrf in ("", "A" * 22 + "." + "A" * 43):
        data = {"csrf_token": csrf, "token": token, "new_password": NEW_PASSWORD}
        refused = await ann.post("/password/reset", data)
        assert refused.status_code == 403
        assert "did not come from this site" in refused.text
    assert await can_sign_in(service, "ann@example.com", PASSWORD)
    form = await ann.http.get(f"/password/reset?token={token}")
    data = {"csrf_token": token_in(form.text), "token": token, "new_password": NEW_PASSWORD}
    assert (await ann.post("/password/reset", data)).status_code == 303


async def test_RESET_09_a_used_link_is_a_page_that_offers_a_new_one(
    ann: Visitor, service: AuthService, smtp: SmtpServer
) -> None:
    await service.register("ann@example.com", PASSWORD)
    await ask_for_reset(ann, "ann@example.com")
    token = await mailed_token(service, smtp, "ann@example.com", "/password/reset")
    form = await ann.http.get(f"/password/reset?token={token}")
    data = {"csrf_token": token_in(form.text), "token": token, "new_password": NEW_PASSWORD}
    assert (await ann.post("/password/reset", data)).status_code == 303
    again = await ann.post("/password/reset", {**data, "new_password": "another fine passphrase"})
    assert again.status_code == 400
    assert "This link does not work" in again.text
    assert 'href="/password/forgot"' in again.text


async def test_RESET_10_hostile_tokens_and_addresses_are_never_echoed_raw(ann: Visitor) -> None:
    hostile = '"><script>alert(1)</script>'
    page = await ann.http.get("/password/reset", params={"token": hostile})
    assert page.status_code == 400
    assert "<script>alert" not in page.text
    assert "alert(1)" not in page.text  # a malformed token is not shown at all
    answer = await ask_for_reset(ann, hostile + "@example.com")
    assert answer.status_code == 422
    assert "<script>alert" not in answer.text
    assert "&lt;script&gt;" in answer.text


async def test_RESET_11_a_weak_password_shows_the_form_again_and_the_link_still_works(
    ann: Visitor, service: AuthService, smtp: SmtpServer
) -> None:
    await service.register("ann@example.com", PASSWORD)
    await ask_for_reset(ann, "ann@example.com")
    token = await mailed_token(service, smtp, "ann@example.com", "/password/reset")
    form = await ann.http.get(f"/password/reset?token={token}")
    data = {"csrf_token": token_in(form.text), "token": token, "new_password": "short"}
    weak = await ann.post("/password/reset", data)
    assert weak.status_code == 422
    assert 'role="alert"' in weak.text
    assert f'name="token" value="{token}"' in weak.text
    data = {"csrf_token": token_in(weak.text), "token": token, "new_password": NEW_PASSWORD}
    assert (await ann.post("/password/reset", data)).status_code == 303


# --- VERIFY-05: the verification pages -----------------------------------------------------------


async def test_VERIFY_05_the_account_page_sends_a_link_and_the_link_page_verifies(
    signed_up: Visitor, service: AuthService, smtp: SmtpServer
) -> None:
    page = await signed_up.account()
    assert "Not verified yet" in page.text
    assert 'action="/account/email/verify"' in page.text
    sent = await signed_up.post("/account/email/verify", {"csrf_token": token_in(page.text)})
    assert (sent.status_code, sent.headers["location"]) == (
        303,
        "/account?notice=verification-sent",
    )
    token = await mailed_token(service, smtp, "ann@example.com", "/email/verify", count=2)
    for _ in range(2):  # opening the link spends nothing: a button confirms
        confirm = await signed_up.http.get(f"/email/verify?token={token}")
        assert confirm.status_code == 200
        assert "Confirm my address" in confirm.text
    data = {"csrf_token": token_in(confirm.text), "token": token}
    done = await signed_up.post("/email/verify", data)
    assert done.status_code == 200
    assert "ann@example.com is verified" in done.text
    page = await signed_up.account()
    assert "Not verified yet" not in page.text
    assert '<span class="badge">Verified</span>' in page.text
    again = await signed_up.post("/email/verify", data)
    assert again.status_code == 400


# --- ACCT: the change-password form on the account page ------------------------------------------


async def change(visitor: Visitor, current: str, new: str) -> httpx.Response:
    page = await visitor.account()
    assert 'action="/account/password"' in page.text
    data = {"csrf_token": token_in(page.text), "current_password": current, "new_password": new}
    return await visitor.post("/account/password", data)


async def test_ACCT_01_changing_the_password_signs_the_other_devices_out(
    signed_up: Visitor, ann_phone: Visitor, service: AuthService, mode: str
) -> None:
    await ann_phone.sign_in("ann@example.com")
    assert await ann_phone.is_signed_in()
    response = await change(signed_up, PASSWORD, NEW_PASSWORD)
    assert response.status_code == 303
    assert not await ann_phone.is_signed_in()
    assert await can_sign_in(service, "ann@example.com", NEW_PASSWORD)
    if mode == "session":  # the session goes on under a new ID
        assert response.headers["location"] == "/account?notice=password-changed"
        page = await signed_up.http.get(response.headers["location"])
        assert "Your password is changed" in page.text
        assert await signed_up.is_signed_in()
    else:  # every token ended, this browser's too
        assert response.headers["location"] == "/signin?notice=password-changed-signin"
        assert not await signed_up.is_signed_in()


@pytest.mark.parametrize(
    ("passwords", "status", "says"),
    [
        (("not my password at all", NEW_PASSWORD), 401, "incorrect"),
        ((PASSWORD, "short"), 422, "at least"),
    ],
)
async def test_ACCT_02_a_refused_change_shows_the_form_again_with_the_reason(
    signed_up: Visitor, service: AuthService, passwords: tuple[str, str], status: int, says: str
) -> None:
    response = await change(signed_up, *passwords)
    assert response.status_code == status
    assert says in response.text
    assert 'action="/account/password"' in response.text
    assert await can_sign_in(service, "ann@example.com", PASSWORD)
    assert await signed_up.is_signed_in()


async def test_ACCT_03_a_change_without_this_sign_ins_token_is_refused(
    signed_up: Visitor, service: AuthService
) -> None:
    data = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    for headers in (
        SAME_ORIGIN,
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    ):
        response = await signed_up.http.post("/account/password", data=data, headers=headers)
        assert response.status_code == 403
    assert await can_sign_in(service, "ann@example.com", PASSWORD)
