"""Sending mail off the request path: a bounded queue, one worker task, retries.

A request that asks for a reset link must not wait for an SMTP server (nor answer
faster when there is nothing to send, which would tell accounts apart): it puts the
message in the queue and answers. The worker, started on first use in the running
event loop, tries each message up to ``attempts`` times with a growing pause, then
logs it as failed (``event=mail_failed``, with the purpose, the user id and the
server's answer, never the message: its links are secrets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from velvetrope.core.events import SecurityEvents
from velvetrope.core.mail import Mail, Mailer
from velvetrope.errors import MailUnavailable

__all__ = ["MailOutbox"]

_logger = logging.getLogger("velvetrope.mail")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Queued:
    mail: Mail
    purpose: str
    user: str


def _raise_if_cancelled() -> None:
    """Stop if this task was cancelled while the SMTP client turned the cancellation
    into a connection error (it can): shutdown must not wait out the retries."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class MailOutbox:
    """Queues mail for a :class:`~velvetrope.core.mail.Mailer` and sends it in the background."""

    def __init__(
        self,
        mailer: Mailer,
        *,
        events: SecurityEvents | None = None,
        capacity: int = 1000,
        attempts: int = 3,
        backoff: timedelta = timedelta(seconds=2),
        sleep: Sleep = asyncio.sleep,
        flush_timeout: timedelta = timedelta(seconds=5),
        deliver_timeout: timedelta = timedelta(seconds=15),
    ) -> None:
        """Args:
        mailer: Where mail goes.
        events: Where ``mail_sent`` and ``mail_failed`` go.
        capacity: Messages waiting at most; past it new ones are dropped and logged.
        attempts: Tries per message before it counts as failed.
        backoff: The pause after the first failure; it doubles after each.
        sleep: How to pause (tests pass one that does not).
        flush_timeout: How long :meth:`aclose` waits for queued mail to go.
        deliver_timeout: How long :meth:`deliver` (a request waiting) may take in all.
        """
        self.mailer = mailer
        self.events = events or SecurityEvents()
        self._capacity = capacity
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue(capacity)
        self._attempts = attempts
        self._backoff = backoff.total_seconds()
        self._sleep = sleep
        self._worker: asyncio.Task[None] | None = None
        self._flush_timeout = flush_timeout.total_seconds()
        self._deliver_timeout = deliver_timeout.total_seconds()

    @property
    def enabled(self) -> bool:
        """Whether mail can be sent at all."""
        return self.mailer.enabled

    def submit(self, mail: Mail, *, purpose: str, user: str) -> bool:
        """Queue ``mail`` and return at once; ``False`` if the queue is full (logged).

        Args:
            mail: The message.
            purpose: What it is for (``password_reset``...), for the log.
            user: The recipient's user id, for the log.
        """
        try:
            self._queue.put_nowait(_Queued(mail, purpose, user))
        except asyncio.QueueFull:
            _logger.error("mail queue full: %s mail for user %s dropped", purpose, user)
            self.events.emit("mail_failed", purpose=purpose, user=user, reason="queue full")
            return False
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._run())
        return True

    async def deliver(self, mail: Mail, *, purpose: str, user: str) -> None:
        """Send ``mail`` now, once, and wait for the server's answer (for a signed-in
        user who asked for it and should hear if it failed), ``deliver_timeout`` at most.

        Raises:
            MailUnavailable: It was not sent (logged, with the reason).
        """
        try:
            async with asyncio.timeout(self._deliver_timeout):
                await self.mailer.send(mail)
        except TimeoutError:
            exc = MailUnavailable(reason=f"no answer within {self._deliver_timeout:g} s")
            self._failed(purpose, user, exc)
            raise exc from None
        except MailUnavailable as exc:
            self._failed(purpose, user, exc)
            raise
        self.events.emit("mail_sent", purpose=purpose, user=user)

    def _failed(self, purpose: str, user: str, exc: MailUnavailable) -> None:
        _logger.error("%s mail for user %s not sent: %s", purpose, user, exc.reason)
        self.events.emit("mail_failed", purpose=purpose, user=user, reason=exc.reason[:200])

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._send(item)
            finally:
                self._queue.task_done()
            # The SMTP client may swallow a cancellation and finish its send (aiosmtplib
            # awaits asyncio.wait_for, which does so on Python 3.11): stop here rather
            # than wait on the queue for ever with the cancellation lost.
            _raise_if_cancelled()

    async def _send(self, item: _Queued) -> None:
        pause = self._backoff
        for attempt in range(1, self._attempts + 1):
            try:
                await self.mailer.send(item.mail)
            except MailUnavailable as exc:
                _raise_if_cancelled()
                if attempt == self._attempts:
                    self._failed(item.purpose, item.user, exc)
                    return
                _logger.warning(
                    "%s mail for user %s: attempt %d failed (%s); retrying in %.0f s",
                    item.purpose,
                    item.user,
                    attempt,
                    exc.reason,
                    pause,
                )
                await self._sleep(pause)
                pause *= 2
            except Exception:  # a bug must not kill the worker and strand the queue
                _raise_if_cancelled()
                _logger.exception("%s mail for user %s: unexpected error", item.purpose, item.user)
                self.events.emit(
                    "mail_failed", purpose=item.purpose, user=item.user, reason="internal error"
                )
                return
            else:
                self.events.emit("mail_sent", purpose=item.purpose, user=item.user)
                return

    async def drain(self) -> None:
        """Wait until every queued message was sent or given up on."""
        if self._worker is not None and not self._worker.done():
            await self._queue.join()

    async def aclose(self) -> None:
        """Send what is queued (for up to ``flush_timeout``), then stop the worker; what
        is still queued then is logged as lost."""
        if self._worker is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._flush_timeout):
                await self.drain()
        lost = self._queue.qsize()
        if lost:
            _logger.error("%d queued mail(s) not sent at shutdown", lost)
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._worker = None
        self._queue = asyncio.Queue(self._capacity)  # a later start may run on another loop
