"""Mail: the SMTP URL, the console backend, real SMTP delivery (aiosmtpd), the outbox.

Every SMTP test talks to a real aiosmtpd server on a free loopback port
(:mod:`tests.support.smtp`): plain, STARTTLS with AUTH, and implicit TLS with AUTH,
under a throwaway certificate authority.
"""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import ssl
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.aio import within
from tests.support.ports import free_port
from tests.support.smtp import SmtpServer
from tests.support.tls import Certificates, make_certificates
from velvetrope import Settings
from velvetrope.bootstrap import build_mailer
from velvetrope.core.events import SecurityEvents
from velvetrope.core.mail import (
    ConsoleMailer,
    Mail,
    NoMailer,
    SmtpConfig,
    SmtpMailer,
    smtp_config,
)
from velvetrope.core.outbox import MailOutbox
from velvetrope.errors import MailUnavailable

SENDER = "velvetrope <no-reply@example.com>"
MAIL = Mail("ann@example.com", "Hello", "A link: https://auth.example.com/x?token=abc\n")


# --- MAIL-01: the URL ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", SmtpConfig("mail.example.com", 25)),
        (
            "smtp://u%40x:p%3Aw@mail.example.com?starttls=true",
            SmtpConfig("mail.example.com", 587, starttls=True, username="u@x", password="p:w"),
        ),
        (
            "smtps://u:pw@mail.example.com",
            SmtpConfig("mail.example.com", 465, implicit_tls=True, username="u", password="pw"),
        ),
        ("smtp://127.0.0.1:2525", SmtpConfig("127.0.0.1", 2525)),
        ("smtp://u:pw@localhost:1025", SmtpConfig("localhost", 1025, username="u", password="pw")),
    ],
)
def test_MAIL_01_smtp_urls_name_host_port_tls_and_credentials(
    url: str, expected: SmtpConfig
) -> None:
    assert smtp_config(url) == expected


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://mail.example.com", "smtp://"),
        ("smtp://", "smtp://"),
        ("smtp://mail.example.com/x", "no path"),
        ("smtp://mail.example.com?tls=1", "unknown option 'tls'"),
        ("smtp://mail.example.com?starttls=maybe", "true or false"),
        ("smtps://mail.example.com?starttls=true", "smtp:// only"),
        ("smtp://u:secret@mail.example.com", "unencrypted"),
        ("smtp://mail.example.com:99999", "smtp://"),
    ],
)
def test_MAIL_01_a_bad_smtp_url_is_refused_with_a_sentence_that_never_shows_the_password(
    url: str, says: str
) -> None:
    with pytest.raises(ValueError, match=says) as caught:
        smtp_config(url)
    assert "secret" not in str(caught.value)
    assert "secret" not in repr(SmtpConfig("h", 1, password="secret"))


def test_MAIL_01_settings_refuse_a_bad_url_and_a_bad_sender_at_load(no_env: None) -> None:
    with pytest.raises(ValueError, match="VELVETROPE_SMTP_URL would send the SMTP password"):
        Settings(_env_file=None, smtp_url="smtp://u:secret@mail.example.com")
    with pytest.raises(ValueError, match="one address"):
        Settings(_env_file=None, mail_from="not an address")


def test_MAIL_01_the_mailer_follows_the_settings(no_env: None) -> None:
    """SMTP when configured; the console on a loopback origin; no mail elsewhere, so reset
    links never end up in a production log."""
    configured = Settings(_env_file=None, smtp_url="smtps://u:pw@mail.example.com")
    assert isinstance(build_mailer(configured), SmtpMailer)
    assert isinstance(build_mailer(Settings(_env_file=None)), ConsoleMailer)
    production = Settings(_env_file=None, public_origin="https://auth.example.com")
    assert isinstance(build_mailer(production), NoMailer)
    assert production.sender == "velvetrope <no-reply@auth.example.com>"


# --- MAIL-02: the console in development --------------------------------------------------------


async def test_MAIL_02_the_console_backend_prints_the_whole_message() -> None:
    out = io.StringIO()
    await ConsoleMailer(SENDER, out).send(MAIL)
    printed = out.getvalue()
    assert "From: velvetrope <no-reply@example.com>" in printed
    assert "To: ann@example.com" in printed
    assert "Subject: Hello" in printed
    assert "https://auth.example.com/x?token=abc" in printed
    assert printed.rstrip().endswith("-" * 79)


async def test_MAIL_02_without_a_mailer_nothing_is_sent_and_the_outbox_says_so() -> None:
    outbox = MailOutbox(NoMailer())
    assert not outbox.enabled
    with pytest.raises(MailUnavailable):
        await outbox.deliver(MAIL, purpose="test", user="u1")


# --- MAIL-03: real SMTP -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("smtp-tls"))


def _server_tls(certificates: Certificates) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.cert, certificates.key)
    return context


def _client_tls(certificates: Certificates) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificates.ca))


async def test_MAIL_03_plain_smtp_delivers_the_message() -> None:
    with SmtpServer() as smtp:
        await SmtpMailer(smtp_config(smtp.url()), SENDER).send(MAIL)
        received = smtp.inbox.wait_for("ann@example.com")
    assert received["Subject"] == "Hello"
    assert received["From"] == SENDER
    assert received["Auto-Submitted"] == "auto-generated"
    assert received["Message-ID"].endswith("@example.com>")
    assert smtp.inbox.envelopes == [("no-reply@example.com", ["ann@example.com"])]


@pytest.mark.parametrize("scheme", ["starttls", "smtps"])
async def test_MAIL_03_tls_with_login_delivers_and_checks_the_certificate(
    certificates: Certificates, scheme: str
) -> None:
    implicit = scheme == "smtps"
    with SmtpServer(
        username="relay", password="pa:ss", tls=_server_tls(certificates), implicit_tls=implicit
    ) as smtp:
        url = smtp.url(
            "smtps" if implicit else "smtp",
            userinfo="relay:pa%3Ass",
            query="" if implicit else "starttls=true",
        )
        config = smtp_config(url)
        await SmtpMailer(config, SENDER, tls_context=_client_tls(certificates)).send(MAIL)
        assert smtp.inbox.wait_for("ann@example.com")["Subject"] == "Hello"
        # The system's authorities do not know the test CA: refused, never sent in clear.
        with pytest.raises(MailUnavailable) as caught:
            await SmtpMailer(config, SENDER).send(MAIL)
        assert "CERTIFICATE_VERIFY_FAILED" in caught.value.reason or "SSL" in caught.value.reason
        wrong = smtp_config(url.replace("pa%3Ass", "wrong"))
        with pytest.raises(MailUnavailable):
            await SmtpMailer(wrong, SENDER, tls_context=_client_tls(certificates)).send(MAIL)
        assert len(smtp.inbox.messages) == 1


# --- MAIL-04: failures are logged, retried, and never raised into a request ----------------------


async def test_MAIL_04_an_unreachable_server_is_retried_then_logged_as_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pauses: list[float] = []

    async def no_sleep(seconds: float) -> None:
        pauses.append(seconds)

    events: list[tuple[str, dict[str, str | int]]] = []
    sink = SecurityEvents(sinks=[lambda name, fields: events.append((name, dict(fields)))])
    mailer = SmtpMailer(smtp_config(f"smtp://127.0.0.1:{free_port()}"), SENDER, timeout=2)
    outbox = MailOutbox(mailer, events=sink, attempts=3, sleep=no_sleep)
    with caplog.at_level(logging.WARNING, logger="velvetrope.mail"):
        assert outbox.submit(MAIL, purpose="password_reset", user="u1")
        await outbox.drain()
    assert pauses == [2.0, 4.0]
    assert [name for name, _ in events] == ["mail_failed"]
    assert events[0][1]["purpose"] == "password_reset"
    assert events[0][1]["user"] == "u1"
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failed) == 1
    assert "password_reset mail for user u1 not sent" in failed[0].getMessage()
    assert "token=abc" not in caplog.text  # the message (its links) is never logged
    await outbox.aclose()


async def test_MAIL_04_a_full_queue_drops_the_message_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outbox = MailOutbox(ConsoleMailer(SENDER, io.StringIO()), capacity=1)
    with caplog.at_level(logging.ERROR, logger="velvetrope.mail"):
        assert outbox.submit(MAIL, purpose="a", user="u1")
        assert not outbox.submit(MAIL, purpose="b", user="u2")
    assert "mail queue full: b mail for user u2 dropped" in caplog.text
    await outbox.aclose()


async def test_MAIL_05_submitting_never_waits_for_the_server() -> None:
    """A server that accepts the connection and never speaks: ``submit`` returns at once
    (it only queues), while the send is still stuck in the worker."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        mailer = SmtpMailer(smtp_config(f"smtp://127.0.0.1:{port}"), SENDER, timeout=30)
        outbox = MailOutbox(mailer, attempts=1, flush_timeout=timedelta(milliseconds=100))
        assert outbox.submit(MAIL, purpose="password_reset", user="u1")
        drained = asyncio.ensure_future(outbox.drain())
        await asyncio.sleep(0.2)  # let the worker connect; the server stays silent
        assert not drained.done(), "the send finished against a silent server"
        drained.cancel()
        await outbox.aclose()
    finally:
        listener.close()


async def test_MAIL_05_aclose_sends_what_is_queued_first(tmp_path: Path) -> None:
    out = io.StringIO()
    outbox = MailOutbox(ConsoleMailer(SENDER, out))
    for n in range(3):
        outbox.submit(Mail(f"u{n}@example.com", "Hi", "text\n"), purpose="t", user=str(n))
    await outbox.aclose()
    assert out.getvalue().count("Subject: Hi") == 3


async def test_MAIL_05_a_cancelled_worker_stops_at_once_even_mid_send() -> None:
    """Shutdown cancels the worker while the SMTP client is mid-conversation with a server
    that went away; the client may turn that into a connection error, and the worker must
    not wait out its retries (2 s, then 4 s) anyway."""
    with SmtpServer() as smtp:
        outbox = MailOutbox(SmtpMailer(smtp_config(smtp.url()), SENDER))
        outbox.submit(MAIL, purpose="password_reset", user="u1")
        await asyncio.sleep(0.005)  # the worker is connecting
    worker = outbox._worker
    assert worker is not None
    if not worker.done():
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await within(1.5, asyncio.shield(worker))


class _SwallowingMailer:
    """Sends as aiosmtplib can on Python 3.11: a cancellation that arrives as a step
    completes is swallowed (``asyncio.wait_for``), and the send finishes normally."""

    enabled = True

    def __init__(self) -> None:
        self.sending = asyncio.Event()

    async def send(self, mail: Mail) -> None:
        self.sending.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return  # swallowed: no re-raise, no uncancel, as wait_for's race does


async def test_MAIL_05_a_worker_whose_cancellation_the_client_swallowed_still_stops() -> None:
    mailer = _SwallowingMailer()
    outbox = MailOutbox(mailer)
    outbox.submit(MAIL, purpose="password_reset", user="u1")
    await within(5, mailer.sending.wait())
    worker = outbox._worker
    assert worker is not None
    worker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await within(1.5, asyncio.shield(worker))


async def test_MAIL_05_a_request_that_waits_for_delivery_waits_a_bounded_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``deliver`` (the signed-in resend) gives up on a silent server after its deadline,
    with ``MailUnavailable`` and a log line, instead of holding the request."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        url = f"smtp://127.0.0.1:{listener.getsockname()[1]}"
        mailer = SmtpMailer(smtp_config(url), SENDER, timeout=30)
        outbox = MailOutbox(mailer, deliver_timeout=timedelta(milliseconds=200))
        with (
            caplog.at_level(logging.ERROR, logger="velvetrope.mail"),
            pytest.raises(MailUnavailable) as caught,
        ):
            await outbox.deliver(MAIL, purpose="email_verification", user="u1")
        assert caught.value.reason == "no answer within 0.2 s"
        assert "email_verification mail for user u1 not sent" in caplog.text
    finally:
        listener.close()
