"""Session lifecycle in the core service, against every backend, on a frozen clock.

Every backend: deadlines, touches, limits and purges are kept by the session store
(behind a near-cache on Redis and PostgreSQL), so each must give the same answers.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from datetime import timedelta

import pytest

from tests.support.services import PASSWORD, SESSION_POLICY
from tests.support.stores import every_backend
from velvetrope import AuthService, FrozenClock, SessionPolicy
from velvetrope.core.ids import is_well_formed_secret, secret_digest
from velvetrope.core.sessions import SessionService
from velvetrope.errors import SessionExpired, SessionInvalid, SessionNotFound
from velvetrope.stores import Stores

pytestmark = every_backend  # the session store, and the near-cache over Redis and PostgreSQL


async def sign_in(service: AuthService, email: str = "ann@example.com") -> str:
    if await service.stores.users.get_by_email(email) is None:
        await service.register(email, PASSWORD)
    return (await service.login(email, PASSWORD)).session.secret


async def test_SESS_01_ids_are_256_bit_urlsafe_from_secrets(service: AuthService) -> None:
    secret = await sign_in(service)
    assert is_well_formed_secret(secret)
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32


async def test_SESS_01_ids_come_from_the_injected_csprng(stores: Stores) -> None:
    """The generator is `secrets.token_bytes` unless injected; all 32 bytes reach the ID."""
    calls: list[int] = []

    def token_bytes(n: int) -> bytes:
        calls.append(n)
        return secrets.token_bytes(n)

    issued = await SessionService(stores.sessions, token_bytes=token_bytes).start("u1")
    assert 32 in calls
    assert len(base64.urlsafe_b64decode(issued.secret + "=")) == 32


async def test_SESS_02_the_id_is_opaque(service: AuthService) -> None:
    """The cookie value decodes to random bytes: no JSON, no user id, no timestamp."""
    secret = await sign_in(service)
    raw = base64.urlsafe_b64decode(secret + "=")
    user = await service.stores.users.get_by_email("ann@example.com")
    assert user is not None
    with pytest.raises((ValueError, UnicodeDecodeError)):
        json.loads(raw)
    assert user.id.encode() not in raw
    assert user.id not in secret
    assert b"ann" not in raw
    assert "ann@example.com" not in secret


async def test_SESS_05_unknown_or_malformed_ids_are_rejected(service: AuthService) -> None:
    for presented in ["", "x", "A" * 43, "A" * 44, "'; DROP TABLE sessions;--", "é" * 43]:
        with pytest.raises(SessionInvalid):
            await service.authenticate(presented)


async def test_SESS_06_each_login_issues_a_new_id_and_destroys_the_presented_one(
    service: AuthService,
) -> None:
    first = await sign_in(service)
    second = (await service.login("ann@example.com", PASSWORD, replacing=first)).session.secret
    assert first != second
    with pytest.raises(SessionInvalid):
        await service.authenticate(first)
    assert (await service.authenticate(second)).handle


async def test_TIME_01_idle_timeout_ends_an_unused_session(
    service: AuthService, clock: FrozenClock
) -> None:
    secret = await sign_in(service)
    clock.advance(SESSION_POLICY.idle_timeout - timedelta(seconds=1))
    await service.authenticate(secret)  # activity resets the idle timer
    clock.advance(SESSION_POLICY.idle_timeout - timedelta(seconds=1))
    await service.authenticate(secret)
    clock.advance(SESSION_POLICY.idle_timeout)
    with pytest.raises(SessionExpired):
        await service.authenticate(secret)
    with pytest.raises(SessionInvalid):  # and it is gone, not just refused
        await service.authenticate(secret)


async def test_TIME_01_boundary_idle_plus_nothing_is_expired(
    service: AuthService, clock: FrozenClock
) -> None:
    secret = await sign_in(service)
    clock.advance(SESSION_POLICY.idle_timeout)
    with pytest.raises(SessionExpired):
        await service.authenticate(secret)


async def test_TIME_02_activity_never_extends_the_absolute_lifetime(
    service: AuthService, clock: FrozenClock
) -> None:
    secret = await sign_in(service)
    step = SESSION_POLICY.idle_timeout - timedelta(minutes=1)
    elapsed = timedelta(0)
    while elapsed + step < SESSION_POLICY.absolute_lifetime:
        clock.advance(step)
        elapsed += step
        await service.authenticate(secret)
    clock.advance(SESSION_POLICY.absolute_lifetime - elapsed)
    with pytest.raises(SessionExpired):
        await service.authenticate(secret)


async def test_TIME_02_reauthentication_resets_both_deadlines(
    service: AuthService, clock: FrozenClock
) -> None:
    secret = await sign_in(service)
    for _ in range(11 * 60 // 25):  # stay active for ~11 h
        clock.advance(timedelta(minutes=25))
        await service.authenticate(secret)
    principal = await service.authenticate(secret)
    renewed = await service.reauthenticate(principal, secret, PASSWORD)
    assert renewed.session.record.expires_at == clock() + SESSION_POLICY.absolute_lifetime
    for _ in range(4):  # alive past the original 12 h end
        clock.advance(timedelta(minutes=25))
        await service.authenticate(renewed.session.secret)
    with pytest.raises(SessionInvalid):  # the pre-reauth ID died at the rotation
        await service.authenticate(secret)


async def test_SESS_11_expiry_is_enforced_from_stored_timestamps(
    service: AuthService, clock: FrozenClock
) -> None:
    """The record is still in the store, yet past its absolute expiry it is refused."""
    secret = await sign_in(service)
    record = await service.stores.sessions.get(secret_digest(secret))
    assert record is not None
    clock.advance(SESSION_POLICY.absolute_lifetime)
    assert await service.stores.sessions.get(secret_digest(secret)) is not None
    with pytest.raises(SessionExpired):
        await service.authenticate(secret)


async def test_last_seen_is_written_at_most_once_per_touch_interval(
    service: AuthService, clock: FrozenClock
) -> None:
    secret = await sign_in(service)
    start = clock()
    clock.advance(SESSION_POLICY.touch_interval - timedelta(seconds=1))
    await service.authenticate(secret)
    stored = await service.stores.sessions.get(secret_digest(secret))
    assert stored is not None
    assert stored.last_seen_at == start
    clock.advance(timedelta(seconds=1))
    principal = await service.authenticate(secret)
    stored = await service.stores.sessions.get(secret_digest(secret))
    assert stored is not None
    assert stored.last_seen_at == clock()
    assert principal.session is not None
    assert principal.session.last_seen_at == clock()


async def test_SESS_09_a_session_ended_elsewhere_is_not_revived_by_activity(
    service: AuthService, clock: FrozenClock
) -> None:
    secret = await sign_in(service)
    clock.advance(SESSION_POLICY.touch_interval)
    await service.end_session_id(secret)
    with pytest.raises(SessionInvalid):
        await service.authenticate(secret)
    assert await service.stores.sessions.get(secret_digest(secret)) is None


async def test_SESS_13_past_the_limit_the_oldest_session_ends(
    service: AuthService, clock: FrozenClock
) -> None:
    secrets_ = []
    for _ in range(SESSION_POLICY.max_per_user + 1):
        secrets_.append(await sign_in(service))
        clock.advance(timedelta(seconds=1))
    with pytest.raises(SessionInvalid):
        await service.authenticate(secrets_[0])
    for secret in secrets_[1:]:
        await service.authenticate(secret)
    user = await service.stores.users.get_by_email("ann@example.com")
    assert user is not None
    assert len(await service.sessions.list(user.id)) == SESSION_POLICY.max_per_user


async def test_SESS_12_list_and_end_sessions_by_handle(service: AuthService) -> None:
    one, two = await sign_in(service), await sign_in(service)
    principal = await service.authenticate(one)
    listed = await service.sessions.list(principal.user_id)
    assert len(listed) == 2
    other = next(s for s in listed if s.handle != principal.handle)
    assert await service.end_session(principal, other.handle) is False
    with pytest.raises(SessionInvalid):
        await service.authenticate(two)
    with pytest.raises(SessionNotFound):
        await service.end_session(principal, other.handle)


async def test_SESS_12_a_user_cannot_end_another_users_session(service: AuthService) -> None:
    mine = await sign_in(service, "ann@example.com")
    theirs = await sign_in(service, "bob@example.com")
    me = await service.authenticate(mine)
    them = await service.authenticate(theirs)
    with pytest.raises(SessionNotFound):
        await service.end_session(me, them.handle)
    await service.authenticate(theirs)


async def test_TERM_03_password_change_ends_every_other_session(service: AuthService) -> None:
    one, two = await sign_in(service), await sign_in(service)
    principal = await service.authenticate(one)
    changed = await service.change_password(
        principal, one, PASSWORD, "a brand new passphrase for ann"
    )
    for old in (one, two):
        with pytest.raises(SessionInvalid):
            await service.authenticate(old)
    assert changed is not None
    await service.authenticate(changed.session.secret)
    await service.login("ann@example.com", "a brand new passphrase for ann")


async def test_TERM_04_disabling_a_user_ends_sessions_on_the_next_request(
    service: AuthService,
) -> None:
    secret = await sign_in(service)
    principal = await service.authenticate(secret)
    assert await service.disable_user(principal.user_id) == 1
    with pytest.raises(SessionInvalid):
        await service.authenticate(secret)


async def test_purge_removes_expired_sessions(service: AuthService, clock: FrozenClock) -> None:
    secret = await sign_in(service)
    clock.advance(SESSION_POLICY.absolute_lifetime)
    assert await service.sessions.purge_expired() == 1
    assert await service.stores.sessions.get(secret_digest(secret)) is None


async def test_SESS_14_SESS_15_lifecycle_is_logged_without_secrets(
    service: AuthService, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="velvetrope.events")
    secret = await sign_in(service)
    principal = await service.authenticate(secret)
    renewed = await service.reauthenticate(principal, secret, PASSWORD)
    await service.end_session_id(renewed.session.secret)
    expiring = await sign_in(service)
    clock.advance(SESSION_POLICY.idle_timeout)
    with pytest.raises(SessionExpired):
        await service.authenticate(expiring)
    events = [getattr(r, "event", None) for r in caplog.records]
    for expected in ("session_created", "session_rotated", "session_ended", "session_expired"):
        assert expected in events
    text = caplog.text
    for secret_value in (secret, renewed.session.secret, expiring):
        assert secret_value not in text
        assert secret_digest(secret_value) not in text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"idle_timeout": timedelta(0)},
        {"idle_timeout": timedelta(hours=13)},
        {"absolute_lifetime": timedelta(days=31)},
        {"touch_interval": timedelta(hours=1)},
        {"max_per_user": 0},
    ],
)
def test_TIME_03_policies_outside_nist_limits_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"."):
        SessionPolicy(**kwargs)  # type: ignore[arg-type]


def test_TIME_03_defaults_meet_aal2() -> None:
    policy = SessionPolicy()
    assert policy.idle_timeout <= timedelta(hours=1)
    assert policy.absolute_lifetime <= timedelta(hours=24)


async def test_SESS_04_lookups_are_by_a_digest_the_client_cannot_steer(
    service: AuthService,
) -> None:
    """The store is only ever asked for sha256(presented ID): no raw compare, no prefix match."""
    secret = await sign_in(service)
    asked: list[str] = []
    original = service.stores.sessions.get

    async def spy(id_digest: str) -> object:
        asked.append(id_digest)
        return await original(id_digest)

    service.stores.sessions.get = spy  # type: ignore[method-assign,assignment]
    await service.authenticate(secret)
    near_miss = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    with pytest.raises(SessionInvalid):
        await service.authenticate(near_miss)
    assert asked == [secret_digest(secret), secret_digest(near_miss)]
    assert secret not in asked
