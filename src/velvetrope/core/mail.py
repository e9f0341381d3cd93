"""Mail: the message, and the ways it leaves (SMTP, or the console in development).

``VELVETROPE_SMTP_URL`` names the server (:func:`smtp_config`)::

    smtp://host                         port 25, plain (loopback relays only, if it has a password)
    smtp://user:pass@host:587?starttls=true     STARTTLS, required (refused if the server lacks it)
    smtps://user:pass@host              port 465, TLS from the first byte

Without it, development servers print every mail to the console, as Django's console
backend does (:class:`ConsoleMailer`); an origin that is not loopback gets no mail at
all rather than reset links in a log (:class:`NoMailer`). Sending is queued off the
request path by :class:`~velvetrope.core.outbox.MailOutbox`.
"""

from __future__ import annotations

import ipaddress
import ssl
import sys
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Protocol, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from velvetrope.errors import MailUnavailable

__all__ = [
    "ConsoleMailer",
    "Mail",
    "Mailer",
    "NoMailer",
    "SmtpConfig",
    "SmtpMailer",
    "check_sender",
    "smtp_config",
]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
SMTP_TIMEOUT = 10.0
_SHOWN = ("From", "To", "Subject", "Date", "Message-ID")


@dataclass(frozen=True, slots=True)
class Mail:
    """One plain-text message to one recipient.

    Attributes:
        to: The recipient's address.
        subject: One line.
        text: The body. Links in it are secrets: never log it.
    """

    to: str
    subject: str
    text: str = field(repr=False)

    def to_message(self, sender: str) -> EmailMessage:
        """The RFC 5322 message, from ``sender``."""
        message = EmailMessage()
        message["From"] = sender
        message["To"] = self.to
        message["Subject"] = self.subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
        message["Message-ID"] = make_msgid(domain=domain)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
        message.set_content(self.text)
        return message


class Mailer(Protocol):
    """Where mail goes. ``send`` either hands the message over or raises."""

    @property
    def enabled(self) -> bool:
        """Whether mail can leave at all (``False``: links cannot be sent)."""

    async def send(self, mail: Mail) -> None:
        """Deliver ``mail``.

        Raises:
            MailUnavailable: It could not be handed to the server.
        """


def check_sender(sender: str) -> str:
    """Return ``sender`` (``Name <addr@host>`` or ``addr@host``) if it is one address.

    Raises:
        ValueError: It is not.
    """
    _, address = parseaddr(sender)
    if "@" not in address or any(c in sender for c in "\r\n") or "," in address:
        raise ValueError("must be one address, like 'velvetrope <no-reply@example.com>'")
    return sender


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where and how to reach the SMTP server (from ``VELVETROPE_SMTP_URL``)."""

    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def encrypted(self) -> bool:
        """Whether the connection is encrypted before any credential is sent."""
        return self.implicit_tls or self.starttls


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def smtp_config(url: str) -> SmtpConfig:
    """Parse an ``smtp://`` or ``smtps://`` URL (see the module docstring).

    Raises:
        ValueError: With a sentence saying what is wrong (never echoing a password).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("must be smtp://[user:password@]host[:port] or smtps://...") from None
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ValueError("must be smtp://[user:password@]host[:port] or smtps://...")
    if parts.path not in {"", "/"} or parts.fragment:
        raise ValueError("takes no path; options go in the query (?starttls=true)")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"starttls"}
    if unknown:
        raise ValueError(f"has an unknown option {sorted(unknown)[0]!r} (known: starttls)")
    starttls = False
    if "starttls" in query:
        value = query["starttls"][-1].lower()
        if value not in _TRUE | _FALSE:
            raise ValueError("starttls must be true or false")
        starttls = value in _TRUE
    implicit = parts.scheme == "smtps"
    if implicit and starttls:
        raise ValueError("smtps:// is TLS from the start; starttls applies to smtp:// only")
    config = SmtpConfig(
        host=parts.hostname,
        port=port or (465 if implicit else 587 if starttls else 25),
        implicit_tls=implicit,
        starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )
    if config.username and not config.encrypted and not _loopback(config.host):
        raise ValueError(
            "would send the SMTP password unencrypted; use smtps:// or ?starttls=true "
            "(plain smtp:// with a password is allowed to a loopback relay only)"
        )
    return config


class SmtpMailer:
    """Sends over SMTP with aiosmtplib: one connection per message, a 10 s timeout."""

    enabled = True

    def __init__(
        self,
        config: SmtpConfig,
        sender: str,
        *,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = SMTP_TIMEOUT,
    ) -> None:
        """Args:
        config: The server (:func:`smtp_config`).
        sender: The ``From`` address.
        tls_context: How to check the server's certificate (default: the system's
            trusted authorities, host name checked).
        timeout: Seconds for each step of the conversation.
        """
        self.config = config
        self.sender = check_sender(sender)
        self._tls = tls_context or ssl.create_default_context()
        self._timeout = timeout

    async def send(self, mail: Mail) -> None:
        """Hand ``mail`` to the server.

        Raises:
            MailUnavailable: The server could not be reached, refused TLS or the
                login, or refused the message (the reason is in the message, for logs).
        """
        config = self.config
        try:
            await aiosmtplib.send(
                mail.to_message(self.sender),
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                use_tls=config.implicit_tls,
                start_tls=config.starttls,
                tls_context=self._tls,
                timeout=self._timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailUnavailable(reason=f"{type(exc).__name__}: {exc}") from exc


class ConsoleMailer:
    """Development: prints each message to a stream (stdout), as Django's console backend."""

    enabled = True

    def __init__(self, sender: str, stream: TextIO | None = None) -> None:
        self.sender = check_sender(sender)
        self._stream = stream

    async def send(self, mail: Mail) -> None:
        """Write ``mail`` out: its headers, then its text as written (not transfer-encoded,
        so a long link stays on one line and can be copied), then a rule."""
        stream = self._stream or sys.stdout
        message = mail.to_message(self.sender)
        head = "".join(f"{name}: {message[name]}\n" for name in _SHOWN)
        stream.write(f"{head}\n{mail.text.rstrip()}\n{'-' * 79}\n")
        stream.flush()


class NoMailer:
    """No SMTP server and not a development origin: nothing can be sent."""

    enabled = False

    async def send(self, mail: Mail) -> None:
        """Refuse.

        Raises:
            MailUnavailable: Always.
        """
        raise MailUnavailable(reason="VELVETROPE_SMTP_URL is not set")
