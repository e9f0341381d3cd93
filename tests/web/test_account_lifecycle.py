"""Password reset and email verification over HTTP, with the links read out of real mail.

The app sends over SMTP to an aiosmtpd server on a free loopback port; each test
reads the delivered message and follows the link in it, as a person would. The
clock is frozen, so a link's expiry is a ``clock.advance`` away. Attacks: a replayed,
an expired, a tampered and another user's link, and the answers an enumerating
client compares.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.services import ORIGIN, PASSWORD, app_settings, started_service
from tests.support.smtp import SENDER, SmtpServer, mailed_token, mailing_service
from tests.web.test_custom_backend import HEADER, ApiKeyStrategy, ApiKeyTransport
from velvetrope import (
    AuthBackend,
    AuthService,
    FrozenClock,
    PasswordHasher,
    Velvetrope,
    create_app,
)
from velvetrope.core.hooks import AccountEvent
from velvetrope.core.mail import SmtpMailer, smtp_config
from velvetrope.stores import Stores
from velvetrope.web.routes.accounts import FORGOT_ANSWER

NEW_PASSWORD = "a brand new passphrase for ann"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
async def service(
    stores: Stores, clock: FrozenClock, hasher: PasswordHasher, smtp: SmtpServer
) -> AsyncIterator[AuthService]:
    """The test service, mailing through the local SMTP server (its queue sent at the end)."""
    started = await mailing_service(stores, smtp, clock=clock, hasher=hasher)
    yield started
    await started.accounts.outbox.aclose()


@pytest.fixture
async def user_email(service: AuthService) -> str:
    """A user signed up as the sign-up route does it: with a verification link mailed."""
    user = await service.register("ann@example.com", PASSWORD)
    await service.accounts.welcome(user)
    return user.email


async def reset_token(
    client: httpx.AsyncClient, service: AuthService, smtp: SmtpServer, email: str
) -> str:
    await service.accounts.outbox.drain()
    sent = [m for m in smtp.inbox.to(email) if m["Subject"].startswith("Reset")]
    response = await client.post("/auth/password/forgot", json={"email": email})
    assert response.status_code == 202, response.text
    return await mailed_token(service, smtp, email, "/password/reset", count=len(sent) + 1)


async def can_sign_in(service: AuthService, email: str, password: str) -> bool:
    try:
        await service.users.authenticate(email, password)
    except Exception:  # noqa: BLE001 - any refusal is "no"
        return False
    return True


# --- RESET: password reset by mail ---------------------------------------------------------------


async def test_RESET_01_the_mailed_link_sets_a_new_password(
    client: httpx.AsyncClient, service: AuthService, smtp: SmtpServer, user_email: str
) -> None:
    token = await reset_token(client, service, smtp, user_email)
    message = smtp.inbox.to(user_email)[-1]
    assert message["Subject"] == "Reset your velvetrope password"
    assert message["From"] == SENDER
    response = await client.post(
        "/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 204, response.text
    assert await can_sign_in(service, user_email, NEW_PASSWORD)
    assert not await can_sign_in(service, user_email, PASSWORD)
    notice = await mailed_token_subject(service, smtp, user_email)
    assert notice == "Your velvetrope password was reset"
    user = await service.find_user(user_email)
    assert user.email_verified_at is not None  # the link proved the address works


async def mailed_token_subject(service: AuthService, smtp: SmtpServer, to: str) -> str:
    await service.accounts.outbox.drain()
    return str(smtp.inbox.to(to)[-1]["Subject"])


async def test_RESET_02_a_replayed_link_is_refused(
    client: httpx.AsyncClient, service: AuthService, smtp: SmtpServer, user_email: str
) -> None:
    token = await reset_token(client, service, smtp, user_email)
    body = {"token": token, "new_password": NEW_PASSWORD}
    assert (await client.post("/auth/password/reset", json=body)).status_code == 204
    again = {"token": token, "new_password": "the attacker's own passphrase"}
    replayed = await client.post("/auth/password/reset", json=again)
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_link"
    assert await can_sign_in(service, user_email, NEW_PASSWORD)


async def test_RESET_03_an_expired_link_is_refused(
    client: httpx.AsyncClient,
    service: AuthService,
    smtp: SmtpServer,
    user_email: str,
    clock: FrozenClock,
) -> None:
    late = await reset_token(client, service, smtp, user_email)
    clock.advance(timedelta(minutes=2))  # past the cooldown: a second link is mailed
    in_time = await reset_token(client, service, smtp, user_email)
    clock.advance(timedelta(minutes=28, seconds=30))  # 30.5 min after the first
    body = {"token": late, "new_password": NEW_PASSWORD}
    expired = await client.post("/auth/password/reset", json=body)
    assert (expired.status_code, expired.json()["error"]) == (400, "invalid_link")
    body = {"token": in_time, "new_password": NEW_PASSWORD}
    assert (await client.post("/auth/password/reset", json=body)).status_code == 204


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: t[:-1],
        lambda t: t + "A",
        lambda t: t.upper(),
        lambda t: "",
        lambda t: t + "%00",
        lambda t: "' OR 1=1 --",
    ],
    ids=["one character", "truncated", "longer", "case", "empty", "nul", "sql"],
)
async def test_RESET_04_a_tampered_link_is_refused_and_spends_nothing(
    client: httpx.AsyncClient,
    service: AuthService,
    smtp: SmtpServer,
    user_email: str,
    tamper: object,
) -> None:
    token = await reset_token(client, service, smtp, user_email)
    assert callable(tamper)
    forged = tamper(token)
    response = await client.post(
        "/auth/password/reset", json={"token": forged, "new_password": NEW_PASSWORD}
    )
    assert response.status_code in {400, 422}, response.text
    assert response.json()["error"] in {"invalid_link", "invalid_request"}
    assert await can_sign_in(service, user_email, PASSWORD)
    body = {"token": token, "new_password": NEW_PASSWORD}
    assert (await client.post("/auth/password/reset", json=body)).status_code == 204


async def test_RESET_04_a_verification_link_is_no_reset_link(
    client: httpx.AsyncClient, service: AuthService, smtp: SmtpServer, user_email: str
) -> None:
    """The sign-up mail's verification secret, presented as a reset token."""
    verify = await mailed_token(service, smtp, user_email, "/email/verify")
    response = await client.post(
        "/auth/password/reset", json={"token": verify, "new_password": NEW_PASSWORD}
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_link")
    assert await can_sign_in(service, user_email, PASSWORD)


async def test_RESET_05_another_users_link_changes_only_that_user(
    client: httpx.AsyncClient, service: AuthService, smtp: SmtpServer, user_email: str
) -> None:
    """Bob, signed in, uses a link mailed to Ann: it resets Ann (whoever holds her
    mail holds her account), never Bob, and Bob stays signed in."""
    await service.register("bob@example.com", PASSWORD)
    bob = await client.post("/auth/login", json={"email": "bob@example.com", "password": PASSWORD})
    assert bob.status_code == 200
    anns = await reset_token(client, service, smtp, user_email)
    body = {"token": anns, "new_password": NEW_PASSWORD}
    assert (await client.post("/auth/password/reset", json=body)).status_code == 204
    assert await can_sign_in(service, "bob@example.com", PASSWORD)
    assert (await client.get("/auth/me")).json()["email"] == "bob@example.com"
    assert await can_sign_in(service, user_email, NEW_PASSWORD)


async def test_RESET_05_a_link_dies_when_the_password_changes_before_it_is_used(
    client: httpx.AsyncClient, service: AuthService, smtp: SmtpServer, user_email: str
) -> None:
    stale = await reset_token(client, service, smtp, user_email)
    await client.post("/auth/login", json={"email": user_email, "password": PASSWORD})
    changed = await client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": "yet another fine passphrase"},
    )
    assert changed.status_code == 204, changed.text
    body = {"token": stale, "new_password": NEW_PASSWORD}
    response = await client.post("/auth/password/reset", json=body)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_link")


async def test_RESET_06_the_answer_is_the_same_whether_or_not_the_account_exists(
    client: httpx.AsyncClient, service: AuthService, smtp: SmtpServer, user_email: str
) -> None:
    """Known, unknown, disabled, differently cased: one status, one body, the same
    headers; only the owner of a live account gets mail."""
    await service.register("dora@example.com", PASSWORD)
    dora = await service.find_user("dora@example.com")
    await service.disable_user(dora.id)
    await service.accounts.outbox.drain()
    before = len(smtp.inbox.messages)
    answers = []
    for email in (user_email, "nobody@example.com", "dora@example.com", "ANN@Example.com"):
        response = await client.post("/auth/password/forgot", json={"email": email})
        headers = {k: v for k, v in response.headers.items() if k not in {"date", "content-length"}}
        answers.append((response.status_code, response.json(), headers))
    assert all(answer == answers[0] for answer in answers), answers
    assert answers[0][0] == 202
    assert answers[0][1] == {"status": "accepted", "detail": FORGOT_ANSWER}
    await service.accounts.outbox.drain()
    recipients = [m["To"] for m in smtp.inbox.messages[before:]]
    assert recipients == [user_email]  # the cased repeat fell in the cooldown


async def test_RESET_06_without_mail_every_address_gets_the_same_refusal(
    stores: Stores, clock: FrozenClock, hasher: PasswordHasher, user_email: str
) -> None:
    quiet = await started_service(stores, clock=clock, hasher=hasher)
    app = create_app(velvetrope=Velvetrope(app_settings(), service=quiet))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        answers = [
            await http.post("/auth/password/forgot", json={"email": email})
            for email in (user_email, "nobody@example.com")
        ]
    assert [a.status_code for a in answers] == [503, 503]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["error"] == "mail_unavailable"


async def test_RESET_07_a_reset_ends_every_session_and_token_family(
    client: httpx.AsyncClient, service: AuthService, smtp: SmtpServer, user_email: str
) -> None:
    login = await client.post("/auth/login", json={"email": user_email, "password": PASSWORD})
    assert login.status_code == 200
    other = await service.login(user_email, PASSWORD)
    pair = await service.token_login(user_email, PASSWORD)
    token = await reset_token(client, service, smtp, user_email)
    body = {"token": token, "new_password": NEW_PASSWORD}
    assert (await client.post("/auth/password/reset", json=body)).status_code == 204
    assert (await client.get("/auth/me")).status_code == 401
    with pytest.raises(Exception, match="session"):
        await service.authenticate(other.session.secret)
    bearer = {"Authorization": f"Bearer {pair.access_token}"}
    assert (await client.get("/auth/me", headers=bearer)).status_code == 401
    refreshed = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": pair.refresh_token}
    )
    assert refreshed.status_code == 400
    assert await service.devices((await service.find_user(user_email)).id) == []


async def test_RESET_07_a_reset_ends_the_devices_of_the_applications_own_ways_in(
    client: httpx.AsyncClient,
    service: AuthService,
    smtp: SmtpServer,
    user_email: str,
    vr: Velvetrope,
) -> None:
    """An API key of the app's own (tests/web/test_custom_backend.py's way in) is a device
    of the account like a session, so the reset ends it too."""
    keys = ApiKeyStrategy(now=FrozenClock())
    vr.add_backend(AuthBackend("api-key", ApiKeyTransport(), keys))
    user = await service.find_user(user_email)
    assert user is not None
    key, _ = keys.issue(user.id, "build server")
    other_user = await service.register("other@example.com", PASSWORD)
    other_key, _ = keys.issue(other_user.id, "someone else's")
    assert (await client.get("/auth/me", headers={HEADER: key})).status_code == 200
    token = await reset_token(client, service, smtp, user_email)
    body = {"token": token, "new_password": NEW_PASSWORD}
    assert (await client.post("/auth/password/reset", json=body)).status_code == 204
    assert (await client.get("/auth/me", headers={HEADER: key})).status_code == 401
    assert await keys.devices(user.id) == []
    assert (await client.get("/auth/me", headers={HEADER: other_key})).status_code == 200


async def test_RESET_07_a_reset_runs_the_password_changed_hook(
    client: httpx.AsyncClient, service: AuthService, smtp: SmtpServer, user_email: str
) -> None:
    seen: list[AccountEvent] = []

    async def record(event: AccountEvent) -> None:
        seen.append(event)

    service.hooks.on_password_change(record)
    service.hooks.on_sign_out(record)
    token = await reset_token(client, service, smtp, user_email)
    body = {"token": token, "new_password": NEW_PASSWORD}
    assert (await client.post("/auth/password/reset", json=body)).status_code == 204
    user = await service.find_user(user_email)
    assert [(e.kind, e.user_id, e.all_devices) for e in seen] == [
        ("signed_out", user.id, True),
        ("password_changed", user.id, False),
    ]
    assert seen[1].email == user_email
    refused = await client.post("/auth/password/reset", json=body)  # a spent link: no hook
    assert refused.status_code == 400
    assert len(seen) == 2


async def test_RESET_08_security_events_and_no_secret_in_the_log(
    client: httpx.AsyncClient,
    service: AuthService,
    smtp: SmtpServer,
    user_email: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        token = await reset_token(client, service, smtp, user_email)
        await client.post("/auth/password/forgot", json={"email": "nobody@example.com"})
        body = {"token": token, "new_password": NEW_PASSWORD}
        await client.post("/auth/password/reset", json=body)
        await client.post("/auth/password/reset", json=body)
        await service.accounts.outbox.drain()
    events = [
        (getattr(r, "event"), getattr(r, "fields"))  # noqa: B009 - set as extra by the logger
        for r in caplog.records
        if hasattr(r, "event")
    ]
    names = [name for name, _ in events]
    assert "password_reset_requested" in names
    outcomes = [f["outcome"] for n, f in events if n == "password_reset_requested"]
    assert outcomes == ["sent", "unknown"]
    reset = next(f for n, f in events if n == "password_reset")
    assert reset["ended"] == 0
    assert ("link_refused", {"purpose": "reset", "reason": "unknown, used or expired"}) in events
    assert names.count("mail_sent") >= 2  # the link and the notice
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("velvetrope"))
    assert token not in ours
    assert user_email not in ours  # addresses are logged as handles


async def test_RESET_11_a_weak_new_password_leaves_the_link_usable(
    client: httpx.AsyncClient, service: AuthService, smtp: SmtpServer, user_email: str
) -> None:
    token = await reset_token(client, service, smtp, user_email)
    for weak in ("short", user_email + "xyz12345"):
        response = await client.post(
            "/auth/password/reset", json={"token": token, "new_password": weak}
        )
        assert (response.status_code, response.json()["error"]) == (422, "weak_password")
    body = {"token": token, "new_password": NEW_PASSWORD}
    assert (await client.post("/auth/password/reset", json=body)).status_code == 204


# --- VERIFY: email verification ------------------------------------------------------------------


async def test_VERIFY_01_sign_up_mails_a_link_that_verifies_the_address(
    client: httpx.AsyncClient, service: AuthService, smtp: SmtpServer
) -> None:
    response = await client.post(
        "/auth/register", json={"email": "eve@example.com", "password": PASSWORD}
    )
    assert response.status_code == 201
    assert (await service.find_user("eve@example.com")).email_verified_at is None
    token = await mailed_token(service, smtp, "eve@example.com", "/email/verify")
    assert smtp.inbox.to("eve@example.com")[0]["Subject"] == "Confirm your address for velvetrope"
    verified = await client.post("/auth/email/verify", json={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["email_verified"] is True
    assert verified.json()["email"] == "eve@example.com"
    assert (await service.find_user("eve@example.com")).email_verified_at is not None
    login = await client.post(
        "/auth/login", json={"email": "eve@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200
    assert (await client.get("/auth/me")).json()["email_verified"] is True


async def test_VERIFY_02_replayed_tampered_and_expired_links_are_refused(
    client: httpx.AsyncClient,
    service: AuthService,
    smtp: SmtpServer,
    user_email: str,
    clock: FrozenClock,
) -> None:
    token = await mailed_token(service, smtp, user_email, "/email/verify")
    tampered = await client.post("/auth/email/verify", json={"token": token[::-1]})
    assert (tampered.status_code, tampered.json()["error"]) == (400, "invalid_link")
    clock.advance(timedelta(hours=24, seconds=1))
    expired = await client.post("/auth/email/verify", json={"token": token})
    assert (expired.status_code, expired.json()["error"]) == (400, "invalid_link")
    assert (await service.find_user(user_email)).email_verified_at is None
    await client.post("/auth/login", json={"email": user_email, "password": PASSWORD})
    assert (await client.post("/auth/email/verify/resend")).status_code == 202
    fresh = await mailed_token(service, smtp, user_email, "/email/verify", count=2)
    assert (await client.post("/auth/email/verify", json={"token": fresh})).status_code == 200
    replayed = await client.post("/auth/email/verify", json={"token": fresh})
    assert (replayed.status_code, replayed.json()["error"]) == (400, "invalid_link")


async def test_VERIFY_03_another_users_link_verifies_only_its_own_address(
    client: httpx.AsyncClient, service: AuthService, smtp: SmtpServer, user_email: str
) -> None:
    anns = await mailed_token(service, smtp, user_email, "/email/verify")
    await service.register("bob@example.com", PASSWORD)
    await client.post("/auth/login", json={"email": "bob@example.com", "password": PASSWORD})
    response = await client.post("/auth/email/verify", json={"token": anns})
    assert response.json()["email"] == user_email
    assert (await service.find_user("bob@example.com")).email_verified_at is None
    assert (await service.find_user(user_email)).email_verified_at is not None


async def test_VERIFY_04_resend_needs_a_sign_in_and_waits_out_the_cooldown(
    client: httpx.AsyncClient,
    service: AuthService,
    smtp: SmtpServer,
    user_email: str,
    clock: FrozenClock,
) -> None:
    assert (await client.post("/auth/email/verify/resend")).status_code == 401
    await client.post("/auth/login", json={"email": user_email, "password": PASSWORD})
    first = await client.post("/auth/email/verify/resend")
    assert (first.status_code, first.json()["status"]) == (202, "sent")
    assert len(smtp.inbox.to(user_email)) == 2  # sent before the answer: sign-up's and this
    again = await client.post("/auth/email/verify/resend")
    assert again.status_code == 429
    assert int(again.headers["retry-after"]) == 60
    clock.advance(timedelta(seconds=61))
    token = await mailed_token(service, smtp, user_email, "/email/verify", count=2)
    assert (await client.post("/auth/email/verify", json={"token": token})).status_code == 200
    done = await client.post("/auth/email/verify/resend")
    assert (done.status_code, done.json()["status"]) == (200, "already_verified")


async def test_VERIFY_04_a_resend_the_server_refuses_is_a_503_and_logged(
    stores: Stores,
    clock: FrozenClock,
    hasher: PasswordHasher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mailer = SmtpMailer(smtp_config(f"smtp://127.0.0.1:{free_port()}"), SENDER, timeout=2)
    down = await started_service(stores, clock=clock, hasher=hasher, mailer=mailer)
    app = create_app(velvetrope=Velvetrope(app_settings(), service=down))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        http.headers["Origin"] = ORIGIN
        await down.register("fay@example.com", PASSWORD)
        login = await http.post(
            "/auth/login", json={"email": "fay@example.com", "password": PASSWORD}
        )
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        with caplog.at_level(logging.ERROR, logger="velvetrope.mail"):
            response = await http.post("/auth/email/verify/resend", headers=csrf)
    assert response.status_code == 503
    assert response.json()["error"] == "mail_unavailable"
    assert "ConnectionRefused" in caplog.text or "connect" in caplog.text.lower()
    await down.aclose()
