"""The browser pages without a browser: headers, markup, error states, CSRF refusals.

Every test runs in both browser credential modes (session cookie, JWT in cookies) on
the memory store; the clock is frozen, so expiry is a ``clock.advance`` away.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from tests.support.services import ORIGIN, PASSWORD
from velvetrope import AuthService, FrozenClock, Settings, Velvetrope, create_app
from velvetrope.core.csrf import presession_binding
from velvetrope.errors import AccountDisabled, StoreUnavailable, TooManyAttempts
from velvetrope.web.devices import describe_user_agent
from velvetrope.web.pages import PAGE_CSP, build_page_router

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
)
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Origin": ORIGIN}
SESSION_COOKIE = "__Host-velvetrope-session"
CREDENTIALS = {
    "session": (SESSION_COOKIE,),
    "jwt-cookie": ("__Host-velvetrope-access", "__Host-velvetrope-refresh"),
}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
DEVICE_ACTION = re.compile(r'action="/account/devices/([^/"]+)/signout"')


@pytest.fixture(params=["session", "jwt-cookie"])
def settings(request: pytest.FixtureRequest) -> Settings:
    return Settings(
        database_url="memory://",
        public_origin=ORIGIN,
        browser_credentials=request.param,
        _env_file=None,
    )


def token_in(html: str) -> str:
    match = TOKEN.search(html)
    assert match is not None, html
    return match.group(1)


class Visitor:
    """A browser, as far as the server can tell: a cookie jar, Fetch Metadata, a User-Agent."""

    def __init__(self, http: httpx.AsyncClient, mode: str, *, user_agent: str = CHROME) -> None:
        self.http = http
        self.mode = mode
        http.headers["User-Agent"] = user_agent

    async def form_token(self, path: str) -> str:
        response = await self.http.get(path)
        assert response.status_code == 200, response.text
        return token_in(response.text)

    async def post(
        self, path: str, data: dict[str, str], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.http.post(path, data=data, headers={**SAME_ORIGIN, **(headers or {})})

    async def sign_up(self, email: str, password: str = PASSWORD) -> httpx.Response:
        token = await self.form_token("/signup")
        data = {"csrf_token": token, "email": email, "password": password}
        return await self.post("/signup", data)

    async def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        token = await self.form_token("/signin")
        data = {"csrf_token": token, "email": email, "password": password}
        return await self.post("/signin", data)

    async def account(self) -> httpx.Response:
        return await self.http.get("/account")

    async def account_token(self) -> str:
        page = await self.account()
        assert page.status_code == 200, page.headers
        return token_in(page.text)

    def credentials(self) -> dict[str, str]:
        return {n: v for n, v in self.http.cookies.items() if n in CREDENTIALS[self.mode]}

    async def is_signed_in(self) -> bool:
        return (await self.http.get("/auth/me")).status_code == 200


@pytest.fixture
def mode(settings: Settings) -> str:
    return settings.browser_credentials


@pytest.fixture
def ann(bare_client: httpx.AsyncClient, mode: str) -> Visitor:
    return Visitor(bare_client, mode)


@pytest.fixture
async def ann_phone(vr: Velvetrope, mode: str) -> AsyncIterator[Visitor]:
    """A second browser (another cookie jar) on the same server."""
    transport = httpx.ASGITransport(app=create_app(velvetrope=vr), client=("198.51.100.9", 5555))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        yield Visitor(http, mode, user_agent=IPHONE)


@pytest.fixture
async def signed_up(ann: Visitor) -> Visitor:
    response = await ann.sign_up("ann@example.com")
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/account"
    return ann


# ---------------------------------------------------------------- navigation


async def test_root_sends_a_stranger_to_sign_in_and_a_member_to_the_account(ann: Visitor) -> None:
    response = await ann.http.get("/")
    assert (response.status_code, response.headers["location"]) == (303, "/signin")
    await ann.sign_up("ann@example.com")
    response = await ann.http.get("/")
    assert (response.status_code, response.headers["location"]) == (303, "/account")


async def test_account_without_a_sign_in_goes_to_sign_in_without_a_notice(ann: Visitor) -> None:
    response = await ann.account()
    assert (response.status_code, response.headers["location"]) == (303, "/signin")


async def test_sign_in_and_sign_up_pages_send_a_member_to_the_account(signed_up: Visitor) -> None:
    for path in ("/signin", "/signup"):
        response = await signed_up.http.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/account")


async def test_sign_up_signs_in_and_the_account_shows_this_device(signed_up: Visitor) -> None:
    assert set(signed_up.credentials()) == set(CREDENTIALS[signed_up.mode])
    page = await signed_up.account()
    assert page.status_code == 200
    assert "ann@example.com" in page.text
    assert page.text.count('class="device current"') == 1
    assert "Chrome 156 on Linux" in page.text
    assert "This device" in page.text
    assert "IP 203.0.113.7" in page.text
    kind = "access token" if signed_up.mode == "jwt-cookie" else "server-side session"
    assert kind in page.text


async def test_sign_in_page_signs_in(ann: Visitor, service: AuthService) -> None:
    await service.register("ann@example.com", PASSWORD)
    response = await ann.sign_in("ANN@example.com")
    assert (response.status_code, response.headers["location"]) == (303, "/account")
    assert await ann.is_signed_in()


async def test_sign_out_ends_the_sign_in_and_clears_the_cookies(signed_up: Visitor) -> None:
    old = signed_up.credentials()
    token = await signed_up.account_token()
    response = await signed_up.post("/account/signout", {"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?notice=signed-out"
    assert response.headers["clear-site-data"] == '"cookies", "storage"'
    assert signed_up.credentials() == {}
    page = await signed_up.http.get(response.headers["location"])
    assert "You have signed out." in page.text
    cookie = "; ".join(f"{name}={value}" for name, value in old.items())
    replayed = await signed_up.http.get("/auth/me", headers={"Cookie": cookie})
    assert replayed.status_code == 401


async def test_the_device_list_marks_this_device_and_shows_the_other(
    signed_up: Visitor, ann_phone: Visitor
) -> None:
    await ann_phone.sign_in("ann@example.com")
    page = (await signed_up.account()).text
    assert len(DEVICE_ACTION.findall(page)) == 2
    assert "Safari 18 on iOS" in page
    assert "IP 198.51.100.9" in page
    mine = page.index('class="device current"')
    assert mine < page.index("Safari 18 on iOS")  # this device first


async def test_signing_out_another_device_right_after_sign_in(
    signed_up: Visitor, ann_phone: Visitor
) -> None:
    await ann_phone.sign_in("ann@example.com")
    phone_token = await ann_phone.account_token()
    page = (await ann_phone.account()).text
    current = re.search(r'class="device current".*?/account/devices/([^/"]+)/signout', page, re.S)
    assert current is not None
    [other] = [h for h in DEVICE_ACTION.findall(page) if h != current.group(1)]
    response = await ann_phone.post(
        f"/account/devices/{other}/signout", {"csrf_token": phone_token}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/account?notice=device-signed-out"
    assert not await signed_up.is_signed_in()
    assert await ann_phone.is_signed_in()
    page = (await ann_phone.http.get(response.headers["location"])).text
    assert "That device is signed out." in page
    assert len(DEVICE_ACTION.findall(page)) == 1
    gone = await signed_up.account()
    assert gone.headers["location"] == "/signin?notice=expired"


async def test_signing_out_this_device_from_the_list_is_a_sign_out(signed_up: Visitor) -> None:
    page = (await signed_up.account()).text
    [handle] = DEVICE_ACTION.findall(page)
    response = await signed_up.post(
        f"/account/devices/{handle}/signout", {"csrf_token": token_in(page)}
    )
    assert response.headers["location"] == "/signin?notice=signed-out"
    assert not await signed_up.is_signed_in()


async def test_signing_out_a_device_that_is_gone_says_so(signed_up: Visitor) -> None:
    token = await signed_up.account_token()
    response = await signed_up.post("/account/devices/0123456789ab/signout", {"csrf_token": token})
    assert response.headers["location"] == "/account?notice=device-gone"
    assert await signed_up.is_signed_in()


async def test_sign_out_everywhere_right_after_sign_in(
    signed_up: Visitor, ann_phone: Visitor
) -> None:
    await ann_phone.sign_in("ann@example.com")
    token = await signed_up.account_token()
    response = await signed_up.post("/account/signout-all", {"csrf_token": token})
    assert response.headers["location"] == "/signin?notice=signed-out-everywhere"
    assert signed_up.credentials() == {}
    assert not await ann_phone.is_signed_in()
    page = await signed_up.http.get(response.headers["location"])
    assert "You have signed out on every device." in page.text


# ---------------------------------------------------------------- recent sign-in


async def test_sign_out_everywhere_asks_for_the_password_after_the_reauth_window(
    signed_up: Visitor, ann_phone: Visitor, clock: FrozenClock
) -> None:
    await ann_phone.sign_in("ann@example.com")
    clock.advance(timedelta(minutes=11))
    token = await signed_up.account_token()
    asked = await signed_up.post("/account/signout-all", {"csrf_token": token})
    assert asked.status_code == 403
    assert asked.headers["content-security-policy"] == PAGE_CSP
    assert 'action="/account/signout-all"' in asked.text
    assert 'name="password"' in asked.text
    assert await ann_phone.is_signed_in()  # nothing happened yet

    wrong = await signed_up.post(
        "/account/signout-all", {"csrf_token": token_in(asked.text), "password": "not it at all"}
    )
    assert wrong.status_code == 401
    assert "The email address or password is incorrect." in wrong.text
    assert await ann_phone.is_signed_in()

    done = await signed_up.post(
        "/account/signout-all", {"csrf_token": token_in(wrong.text), "password": PASSWORD}
    )
    assert done.headers["location"] == "/signin?notice=signed-out-everywhere"
    assert not await ann_phone.is_signed_in()
    assert not await signed_up.is_signed_in()


async def test_signing_out_another_device_asks_for_the_password_then_keeps_this_one(
    signed_up: Visitor, ann_phone: Visitor, clock: FrozenClock
) -> None:
    clock.advance(timedelta(minutes=11))
    await ann_phone.sign_in("ann@example.com")
    page = (await signed_up.account()).text
    current = re.search(r'class="device current".*?/account/devices/([^/"]+)/signout', page, re.S)
    assert current is not None
    [phone] = [h for h in DEVICE_ACTION.findall(page) if h != current.group(1)]
    path = f"/account/devices/{phone}/signout"
    asked = await signed_up.post(path, {"csrf_token": token_in(page)})
    assert asked.status_code == 403
    assert f'action="{path}"' in asked.text
    assert "Sign that device out" in asked.text
    done = await signed_up.post(path, {"csrf_token": token_in(asked.text), "password": PASSWORD})
    assert done.headers["location"] == "/account?notice=device-signed-out"
    assert not await ann_phone.is_signed_in()
    assert await signed_up.is_signed_in()  # with the credential the re-auth set
    assert len(DEVICE_ACTION.findall((await signed_up.account()).text)) == 1


# ---------------------------------------------------------------- error states


async def test_an_empty_password_on_the_confirm_form_asks_again(
    signed_up: Visitor, clock: FrozenClock
) -> None:
    clock.advance(timedelta(minutes=11))
    token = await signed_up.account_token()
    response = await signed_up.post("/account/signout-all", {"csrf_token": token, "password": ""})
    assert response.status_code == 422
    assert 'action="/account/signout-all"' in response.text
    assert await signed_up.is_signed_in()


async def test_any_other_refusal_is_still_a_page(
    signed_up: Visitor, service: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(*_: object) -> int:
        raise AccountDisabled

    monkeypatch.setattr(service, "sign_out_everywhere", refuse)
    token = await signed_up.account_token()
    response = await signed_up.post("/account/signout-all", {"csrf_token": token})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "This account is disabled." in response.text
    assert 'href="/account"' in response.text


async def test_a_wrong_password_is_a_401_with_the_form_again(
    ann: Visitor, service: AuthService
) -> None:
    await service.register("ann@example.com", PASSWORD)
    response = await ann.sign_in("ann@example.com", "not the password at all")
    assert response.status_code == 401
    assert "The email address or password is incorrect." in response.text
    assert 'value="ann@example.com"' in response.text
    assert 'name="csrf_token"' in response.text
    assert ann.credentials() == {}


async def test_too_many_attempts_is_a_429_that_says_how_long_to_wait(
    ann: Visitor, service: AuthService
) -> None:
    await service.register("ann@example.com", PASSWORD)
    statuses = [(await ann.sign_in("ann@example.com", "wrong password!")).status_code]
    for _ in range(5):
        statuses.append((await ann.sign_in("ann@example.com", "wrong password!")).status_code)
    throttled = await ann.sign_in("ann@example.com", PASSWORD)
    assert statuses == [401] * 5 + [429]
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "1"  # the frozen clock: one second of back-off
    assert "Too many failed sign-in attempts." in throttled.text
    assert "You can try again in 1 second." in throttled.text
    assert ann.credentials() == {}


async def test_a_taken_email_is_a_409(ann: Visitor, service: AuthService) -> None:
    await service.register("ann@example.com", PASSWORD)
    response = await ann.sign_up("ann@example.com")
    assert response.status_code == 409
    assert "An account with this email address already exists." in response.text
    assert ann.credentials() == {}


async def test_a_weak_password_is_a_422_with_the_policy(ann: Visitor) -> None:
    response = await ann.sign_up("ann@example.com", "too short")
    assert response.status_code == 422
    assert "The password must be at least 15 characters long." in response.text
    assert 'minlength="15"' in response.text
    assert 'value="ann@example.com"' in response.text


async def test_an_invalid_email_is_a_422(ann: Visitor) -> None:
    response = await ann.sign_up("not an address", PASSWORD)
    assert response.status_code == 422
    assert "The email address is not valid" in response.text


async def test_a_disabled_account_is_a_403(ann: Visitor, service: AuthService) -> None:
    user = await service.register("ann@example.com", PASSWORD)
    await service.disable_user(user.id)
    response = await ann.sign_in("ann@example.com")
    assert response.status_code == 403
    assert "This account is disabled." in response.text


async def test_too_many_sign_ups_is_a_429_in_minutes(ann: Visitor, service: AuthService) -> None:
    for n in range(20):  # the fixture policy's hourly allowance for one address
        await service.register(f"user{n}@example.com", PASSWORD, ip="203.0.113.7")
    response = await ann.sign_up("ann@example.com")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3600"
    assert "Too many sign-ups from this address." in response.text
    assert "You can try again in 60 minutes." in response.text


async def test_a_sign_up_whose_sign_in_is_refused_shows_the_sign_in_form(
    ann: Visitor, vr: Velvetrope, service: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def busy(*_: object, **__: object) -> None:
        raise TooManyAttempts(timedelta(seconds=1), "The server is busy checking passwords.")

    monkeypatch.setattr(vr.browser, "login", busy)
    response = await ann.sign_up("ann@example.com")
    assert response.status_code == 429
    assert "The server is busy checking passwords." in response.text
    assert 'action="/signin"' in response.text  # the account exists: sign in next
    assert 'value="ann@example.com"' in response.text
    assert await service.users.find("ann@example.com")


async def test_a_signed_in_form_posted_after_the_sign_in_ended_goes_to_sign_in(
    signed_up: Visitor, clock: FrozenClock
) -> None:
    token = await signed_up.account_token()
    clock.advance(timedelta(days=2))
    response = await signed_up.post("/account/signout-all", {"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?notice=expired"
    assert signed_up.credentials() == {}


async def test_an_expired_sign_in_goes_to_sign_in_with_a_notice(
    signed_up: Visitor, clock: FrozenClock
) -> None:
    clock.advance(timedelta(days=2))  # past the session's and the refresh family's idle limit
    response = await signed_up.account()
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?notice=expired"
    assert signed_up.credentials() == {}  # the dead cookies are cleared
    page = await signed_up.http.get(response.headers["location"])
    assert "Your session has expired; sign in again." in page.text
    again = await signed_up.account()
    assert again.headers["location"] == "/signin"  # said once


async def test_the_sign_in_forms_own_cookie_is_no_sign_in_to_expire(ann: Visitor) -> None:
    await ann.form_token("/signin")
    response = await ann.account()
    assert response.headers["location"] == "/signin"


@pytest.mark.parametrize("settings", ["jwt-cookie"], indirect=True)
async def test_jwt_cookie_pages_renew_an_expired_access_token(
    signed_up: Visitor, clock: FrozenClock
) -> None:
    before = signed_up.credentials()
    clock.advance(timedelta(minutes=20))  # the access token (15 min) expired; the family lives
    page = await signed_up.account()
    assert page.status_code == 200
    after = signed_up.credentials()
    assert after["__Host-velvetrope-access"] != before["__Host-velvetrope-access"]
    assert after["__Host-velvetrope-refresh"] != before["__Host-velvetrope-refresh"]
    token = token_in(page.text)
    clock.advance(timedelta(minutes=20))  # a form posted after the next expiry still works
    response = await signed_up.post("/account/signout", {"csrf_token": token})
    assert response.headers["location"] == "/signin?notice=signed-out"
    assert not await signed_up.is_signed_in()


async def test_a_store_outage_is_a_503_page(
    ann: Visitor, vr: Velvetrope, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unavailable(*_: object, **__: object) -> None:
        raise StoreUnavailable("redis: connection refused on 10.0.0.5:6379")

    token = await ann.form_token("/signin")
    monkeypatch.setattr(vr.browser, "page_principal", unavailable)
    monkeypatch.setattr(vr.browser, "login", unavailable)
    for response in (
        await ann.account(),
        await ann.post("/signin", {"csrf_token": token, "email": "a@example.com", "password": "x"}),
    ):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.headers["content-type"].startswith("text/html")
        assert "cannot reach its store" in response.text
        assert "10.0.0.5" not in response.text  # backend details stay in the log


async def test_notices_are_chosen_from_a_fixed_list(ann: Visitor) -> None:
    page = await ann.http.get("/signin", params={"notice": "<b>pwned</b>"})
    assert page.status_code == 200
    assert "pwned" not in page.text
    assert 'class="message' not in page.text


# ---------------------------------------------------------------- CSRF


async def test_CSRF_01_sign_in_form_without_a_token_is_a_403_page(
    ann: Visitor, service: AuthService
) -> None:
    await service.register("ann@example.com", PASSWORD)
    await ann.form_token("/signin")
    response = await ann.post("/signin", {"email": "ann@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == PAGE_CSP
    assert "did not come from this site" in response.text
    assert 'href="/signin"' in response.text
    assert ann.credentials() == {}


@pytest.mark.parametrize("path", ["/signin", "/signup"])
async def test_CSRF_02_a_token_for_another_browsers_form_is_refused(
    ann: Visitor, ann_phone: Visitor, service: AuthService, path: str
) -> None:
    """Login CSRF: the attacker's own form token does not fit the victim's pre-session cookie."""
    await service.register("eve@example.com", PASSWORD)
    eves = await ann_phone.form_token(path)
    await ann.form_token(path)
    response = await ann.post(
        path, {"csrf_token": eves, "email": "eve@example.com", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert ann.credentials() == {}


async def test_CSRF_02_a_forged_token_or_no_cookie_is_refused(
    ann: Visitor, service: AuthService
) -> None:
    await service.register("ann@example.com", PASSWORD)
    token = await ann.form_token("/signin")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    data = {"csrf_token": forged, "email": "ann@example.com", "password": PASSWORD}
    assert (await ann.post("/signin", data)).status_code == 403
    ann.http.cookies.clear()
    data["csrf_token"] = token
    assert (await ann.post("/signin", data)).status_code == 403
    assert ann.credentials() == {}


@pytest.mark.parametrize("path", ["/account/signout", "/account/signout-all", "DEVICE"])
@pytest.mark.parametrize("token", ["missing", "forged", "presession", "other sign-in"])
async def test_CSRF_01_02_04_signed_in_forms_need_this_sign_ins_token(
    signed_up: Visitor, ann_phone: Visitor, vr: Velvetrope, path: str, token: str
) -> None:
    page = (await signed_up.account()).text
    [handle] = DEVICE_ACTION.findall(page)
    path = path.replace("DEVICE", f"/account/devices/{handle}/signout")
    await ann_phone.sign_in("ann@example.com")
    nonce = signed_up.http.cookies["__Host-velvetrope-csrf"]
    submitted = {
        "missing": None,
        "forged": "A" * 22 + "." + "B" * 43,
        # what this browser's sign-up form carried, before the sign-in (CSRF-04)
        "presession": vr.csrf.tokens.issue(presession_binding(nonce)),
        "other sign-in": await ann_phone.account_token(),
    }[token]
    data = {} if submitted is None else {"csrf_token": submitted}
    response = await signed_up.post(path, data)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "did not come from this site" in response.text
    assert 'href="/account"' in response.text
    assert await signed_up.is_signed_in()
    assert await ann_phone.is_signed_in()
    assert len(DEVICE_ACTION.findall((await signed_up.account()).text)) == 2


@pytest.mark.parametrize("fetch_site", ["cross-site", "same-site"])
@pytest.mark.parametrize("path", ["/account/signout", "/account/signout-all", "/signin"])
async def test_CSRF_05_cross_site_page_posts_are_refused(
    signed_up: Visitor, fetch_site: str, path: str
) -> None:
    token = await signed_up.account_token()
    data = {"csrf_token": token, "email": "ann@example.com", "password": PASSWORD}
    before = signed_up.credentials()
    response = await signed_up.post(
        path, data, headers={"Sec-Fetch-Site": fetch_site, "Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert signed_up.credentials() == before
    assert await signed_up.is_signed_in()


async def test_pages_check_the_origin_themselves_without_the_middleware(
    vr: Velvetrope, signed_up: Visitor, clock: FrozenClock
) -> None:
    """Defence in depth: the page router refuses a cross-site post in any app that mounts it."""
    bare = FastAPI()
    bare.include_router(build_page_router(vr.context))
    transport = httpx.ASGITransport(app=bare, client=("203.0.113.7", 4711))
    token = await signed_up.account_token()
    clock.advance(timedelta(minutes=20))  # JWT mode: the access token needs renewing now
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        http.cookies = signed_up.http.cookies
        response = await http.post(
            "/account/signout-all",
            data={"csrf_token": token},
            headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        )
    assert response.status_code == 403
    assert "did not come from this site" in response.text
    assert "set-cookie" not in response.headers
    # refused before any renewal: a rotation the browser never saw would make its next
    # renewal, past the grace window, look like a stolen refresh token
    clock.advance(timedelta(seconds=30))
    assert (await signed_up.account()).status_code == 200


# ---------------------------------------------------------------- headers and markup


async def _every_page(ann: Visitor, service: AuthService) -> dict[str, httpx.Response]:
    """One response of every kind of page: forms, the account, the confirm form, errors."""
    pages = {"signin": await ann.http.get("/signin"), "signup": await ann.http.get("/signup")}
    pages["signup-weak"] = await ann.sign_up("bob@example.com", "short")
    await service.register("bob@example.com", PASSWORD)
    pages["signin-401"] = await ann.sign_in("bob@example.com", "wrong password")
    pages["csrf-403"] = await ann.post("/signin", {"email": "bob@example.com", "password": "x"})
    await ann.sign_in("bob@example.com")
    pages["account"] = await ann.account()
    return pages


async def test_pages_send_a_strict_csp_and_the_security_headers(
    ann: Visitor, service: AuthService
) -> None:
    for name, response in (await _every_page(ann, service)).items():
        headers = response.headers
        csp = headers["content-security-policy"]
        assert csp == PAGE_CSP, name
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert "script-src" not in csp  # default-src 'none': no script at all
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["referrer-policy"] == "no-referrer", name
        assert headers["x-frame-options"] == "DENY", name
        assert headers["cache-control"] == "no-store", name
        assert headers["strict-transport-security"].startswith("max-age="), name  # https origin


async def test_responses_that_set_credentials_are_not_stored(ann: Visitor) -> None:
    form = await ann.http.get("/signup")  # sets the pre-session cookie
    signed_up = await ann.sign_up("ann@example.com")  # sets the credential
    for response in (form, signed_up):
        assert "set-cookie" in response.headers
        assert response.headers["cache-control"] == "no-store"


async def test_pages_carry_no_script_no_inline_style_and_no_handlers(
    ann: Visitor, service: AuthService
) -> None:
    for name, response in (await _every_page(ann, service)).items():
        html = response.text.lower()
        assert "<html" in html, name
        assert "<script" not in html, name
        assert " style=" not in html, name
        assert re.search(r"\son[a-z]+=", html) is None, name
        assert "javascript:" not in html, name
        assert '<meta name="viewport"' in html, name


async def test_no_hsts_when_the_origin_is_plain_http(service: AuthService) -> None:
    settings = Settings(
        database_url="memory://", public_origin="http://127.0.0.1:8000", _env_file=None
    )
    app = create_app(velvetrope=Velvetrope(settings, service=service))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        response = await http.get("/signin")
    assert response.status_code == 200
    assert "strict-transport-security" not in response.headers
    assert response.headers["content-security-policy"] == PAGE_CSP


async def test_the_stylesheet_is_served_and_cacheable(ann: Visitor) -> None:
    response = await ann.http.get("/static/velvetrope.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert "unsafe" not in response.text
    icon = await ann.http.get("/static/favicon.svg")
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert (await ann.http.get("/static/../pages.py")).status_code == 404


async def test_a_hostile_email_is_escaped_when_the_form_comes_back(ann: Visitor) -> None:
    hostile = '"><script>alert(1)</script>'
    response = await ann.sign_in(hostile, "whatever password")
    assert response.status_code == 401
    assert "<script>" not in response.text
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in response.text


async def test_a_stored_email_and_user_agent_are_escaped_on_the_account_page(
    ann: Visitor, service: AuthService
) -> None:
    await service.register("tom&jerry'@example.com", PASSWORD)
    ann.http.headers["User-Agent"] = '"><img src=x onerror=alert(1)> Firefox/1'
    await ann.sign_in("tom&jerry'@example.com")
    page = await ann.account()
    assert page.status_code == 200
    assert "tom&amp;jerry&#39;@example.com" in page.text
    assert "<img" not in page.text
    assert 'title="&#34;&gt;&lt;img src=x onerror=alert(1)&gt; Firefox/1"' in page.text


# ---------------------------------------------------------------- user agents


@pytest.mark.parametrize(
    ("user_agent", "described"),
    [
        (CHROME, "Chrome 156 on Linux"),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/156.0.0.0 Safari/537.36",
            "Chrome 156 on Linux",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
            "Edge 131 on Windows",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0",
            "Opera 115 on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox 133 on macOS",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/18.2 Safari/605.1.15",
            "Safari 18 on macOS",
        ),
        (IPHONE, "Safari 18 on iOS"),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
            "Chrome 131 on iOS",
        ),
        (
            "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
            "Firefox 133 on iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.6778.81 Mobile Safari/537.36",
            "Chrome 131 on Android",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/27.0 Chrome/125.0.0.0 Mobile Safari/537.36",
            "Samsung Internet 27 on Android",
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36",
            "Chrome 131 on ChromeOS",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox 128 on Linux",
        ),
        ("curl/8.5.0", "curl 8"),
        ("python-httpx/0.28.1", "python-httpx 0"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "Unknown browser on Windows"),
        ("Mozilla/5.0", "Unknown device"),
        ("", "Unknown device"),
        ("<script>", "Unknown device"),
    ],
)
def test_user_agents_are_described_briefly(user_agent: str, described: str) -> None:
    assert describe_user_agent(user_agent) == described


def test_describing_a_huge_user_agent_stays_fast() -> None:
    """No regex backtracking: a long hostile string is read in one pass."""
    assert describe_user_agent("Mozilla/5.0 Version/1" + "1." * 50_000 + "x") == "Unknown device"
    assert describe_user_agent("a" * 100_000) == "Unknown device"
