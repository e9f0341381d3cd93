"""Mailed links on every store backend: what is stored, single use under a race, expiry.

Whether a link works once, and only until its deadline, is decided in the store's
``one_time`` entries (taken atomically), so these run once per backend. Mail is
printed into a buffer here; the SMTP path is tested in ``tests/web`` and
``tests/core/test_mail.py``.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tests.support.services import PASSWORD, started_service
from tests.support.stores import every_backend
from velvetrope import AuthService, FrozenClock, PasswordHasher
from velvetrope.core.ids import secret_digest
from velvetrope.core.mail import ConsoleMailer
from velvetrope.errors import InvalidLink
from velvetrope.stores import Stores

pytestmark = every_backend

TOKEN = re.compile(r"/password/reset\?token=([A-Za-z0-9_-]{43})")


@pytest.fixture
def printed() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
async def service(
    stores: Stores, clock: FrozenClock, hasher: PasswordHasher, printed: io.StringIO
) -> AsyncIterator[AuthService]:
    mailer = ConsoleMailer("velvetrope <no-reply@example.com>", printed)
    started = await started_service(stores, clock=clock, hasher=hasher, mailer=mailer)
    yield started
    await started.accounts.outbox.aclose()


async def reset_link_token(service: AuthService, printed: io.StringIO) -> str:
    await service.register("ann@example.com", PASSWORD)
    await service.accounts.request_password_reset("ann@example.com")
    await service.accounts.outbox.drain()
    found = TOKEN.findall(printed.getvalue())
    assert len(found) == 1, printed.getvalue()
    return str(found[0])


async def test_RESET_01_the_store_holds_the_digest_never_the_secret(
    service: AuthService, stores: Stores, clock: FrozenClock, printed: io.StringIO
) -> None:
    token = await reset_link_token(service, printed)
    now = clock()
    assert await stores.one_time.take(f"reset:{token}", now) is None
    entry = await stores.one_time.take(f"reset:{secret_digest(token)}", now)
    assert entry is not None
    assert token not in entry
    user = await service.find_user("ann@example.com")
    assert user.id in entry
    assert user.password_hash not in entry  # a hash of it, not the hash itself


async def test_RESET_02_of_concurrent_uses_of_one_link_exactly_one_wins(
    service: AuthService, printed: io.StringIO
) -> None:
    token = await reset_link_token(service, printed)
    passwords = [f"the winning passphrase number {n:02d}" for n in range(8)]
    outcomes = await asyncio.gather(
        *(service.accounts.reset_password(token, p) for p in passwords),
        return_exceptions=True,
    )
    winners = [p for p, o in zip(passwords, outcomes, strict=True) if not isinstance(o, Exception)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, InvalidLink) for o in outcomes if isinstance(o, Exception))
    await service.users.authenticate("ann@example.com", winners[0])


async def test_RESET_03_the_deadline_is_kept_by_core_whatever_the_store_still_holds(
    service: AuthService, clock: FrozenClock, printed: io.StringIO
) -> None:
    token = await reset_link_token(service, printed)
    clock.advance(timedelta(minutes=30))
    with pytest.raises(InvalidLink):
        await service.accounts.reset_password(token, "a brand new passphrase for ann")
    await service.users.authenticate("ann@example.com", PASSWORD)
