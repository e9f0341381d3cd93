"""A real SMTP server on a free loopback port (aiosmtpd), and the mail it received.

``SmtpServer`` runs aiosmtpd's ``Controller`` (its own thread and event loop), so the
app under test talks real SMTP over TCP to it, and tests read the delivered messages,
and the links in them, the way a person reads their inbox. With ``username`` and
``password`` it requires AUTH (after STARTTLS, or over implicit TLS, when given a
certificate).
"""

from __future__ import annotations

import email
import email.policy
import re
import ssl
import threading
import time
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.support.ports import free_port
from tests.support.services import ORIGIN, started_service
from velvetrope import AuthService, Clock, PasswordHasher
from velvetrope.core.accounts import AccountMailPolicy
from velvetrope.core.mail import SmtpMailer, smtp_config
from velvetrope.stores import Stores

__all__ = ["SENDER", "Inbox", "SmtpServer", "link_in", "mailed_token", "mailing_service"]

SENDER = "velvetrope <no-reply@example.com>"

LINK = re.compile(r"https?://\S+")


def link_in(message: EmailMessage, path: str) -> str:
    """The one link in ``message`` whose path is ``path`` (``/password/reset``)."""
    body = message.get_body(("plain",))
    assert body is not None, message
    text = body.get_content()
    found = [link for link in LINK.findall(text) if path + "?" in link]
    assert len(found) == 1, text
    return str(found[0])


@dataclass
class Inbox:
    """Every message the server accepted, in order, parsed."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._arrived:
            self.messages.append(parsed)
            self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
            self._arrived.notify_all()
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        """The messages to ``address``."""
        return [m for m in self.messages if m["To"] == address]

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> EmailMessage:
        """Wait (a real wait: delivery crosses threads) until ``address`` has ``count``
        messages; return message number ``count`` (from 1)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.to(address)) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"no mail #{count} to {address}; got {self.envelopes}"
                self._arrived.wait(left)
        return self.to(address)[count - 1]


class _Authenticator:
    def __init__(self, username: str, password: str) -> None:
        self._pair = (username.encode(), password.encode())

    def __call__(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        given = (
            (auth_data.login, auth_data.password) if isinstance(auth_data, LoginPassword) else None
        )
        ok = given == self._pair
        return AuthResult(success=ok, handled=False)


class _Controller(Controller):
    def factory(self) -> Any:
        # Over implicit TLS AUTH is encrypted, but aiosmtpd only knows STARTTLS and warns.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return super().factory()  # type: ignore[no-untyped-call]


class SmtpServer:
    """aiosmtpd on ``127.0.0.1:<free port>``; a context manager."""

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
    ) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        options: dict[str, Any] = {}
        if username is not None and password is not None:
            options.update(
                authenticator=_Authenticator(username, password),
                auth_required=True,
                # Over implicit TLS aiosmtpd does not see the session as TLS; it is.
                auth_require_tls=tls is not None and not implicit_tls,
            )
        if tls is not None and implicit_tls:
            options["ssl_context"] = tls
        elif tls is not None:
            options.update(tls_context=tls, require_starttls=True)
        self._controller = _Controller(self.inbox, hostname="127.0.0.1", port=self.port, **options)

    def url(self, scheme: str = "smtp", *, userinfo: str = "", query: str = "") -> str:
        """A ``VELVETROPE_SMTP_URL`` for this server."""
        at = f"{userinfo}@" if userinfo else ""
        return f"{scheme}://{at}127.0.0.1:{self.port}{'?' + query if query else ''}"

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()


async def mailing_service(
    stores: Stores, smtp: SmtpServer, *, clock: Clock, hasher: PasswordHasher
) -> AuthService:
    """A started test service that mails through ``smtp``, its links on ``ORIGIN``
    (close it with ``await service.accounts.outbox.aclose()``)."""
    return await started_service(
        stores,
        clock=clock,
        hasher=hasher,
        mailer=SmtpMailer(smtp_config(smtp.url()), SENDER),
        account_policy=AccountMailPolicy(origin=ORIGIN),
    )


def _links_to(message: EmailMessage, path: str) -> bool:
    body = message.get_body(("plain",))
    return body is not None and f"{path}?" in body.get_content()


async def mailed_token(
    service: AuthService, smtp: SmtpServer, to: str, path: str, *, count: int = 1
) -> str:
    """The token of the ``count``-th mail to ``to`` that links to ``path`` (on ``ORIGIN``)."""
    await service.accounts.outbox.drain()  # queued mail has left (the inbox may lag)
    deadline = time.monotonic() + 10
    while True:
        found = [m for m in smtp.inbox.to(to) if _links_to(m, path)]
        if len(found) >= count or time.monotonic() > deadline:
            break
        smtp.inbox.wait_for(to, len(smtp.inbox.to(to)) + 1, timeout=deadline - time.monotonic())
    assert len(found) >= count, f"no mail #{count} to {to} linking to {path}"
    link = link_in(found[count - 1], path)
    assert link.startswith(f"{ORIGIN}{path}?token=")
    return parse_qs(urlsplit(link).query)["token"][0]
