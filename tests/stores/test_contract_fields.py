"""Fields a request reads without another lookup (a session's email and claims), device
binding (a session's device key, a token family's key thumbprint) and email verification:
the contract every backend keeps, on real servers."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from tests.stores.test_contract import session, user
from tests.stores.test_contract_tokens import family
from velvetrope.core.ids import new_secret, secret_digest
from velvetrope.stores import Stores

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CLAIMS = {
    "roles": ["admin", "billing"],
    "department": "Zürich ✓",
    "limits": {"orders": 10, "ratio": 0.5, "trial": False, "note": None},
}
DEVICE_KEY = '{"crv":"P-256","kty":"EC","x":"abc","y":"def"}'


async def test_a_session_keeps_its_email_claims_and_device_key(stores: Stores) -> None:
    s = dataclasses.replace(
        session("u1"), email="ann@example.com", claims=CLAIMS, device_key=DEVICE_KEY
    )
    await stores.sessions.add(s)
    assert await stores.sessions.get(s.id_digest) == s
    assert list(await stores.sessions.list_for_user("u1")) == [s]


async def test_a_session_without_them_reads_back_empty(stores: Stores) -> None:
    s = session("u1")
    await stores.sessions.add(s)
    got = await stores.sessions.get(s.id_digest)
    assert got is not None
    assert (got.email, dict(got.claims), got.device_key) == ("", {}, None)


async def test_bind_records_the_device_key(stores: Stores) -> None:
    s = session("u1")
    await stores.sessions.add(s)
    assert await stores.sessions.get(s.id_digest) == s  # cached where a backend caches
    assert await stores.sessions.bind(s.id_digest, DEVICE_KEY)
    assert await stores.sessions.get(s.id_digest) == dataclasses.replace(s, device_key=DEVICE_KEY)


async def test_SESS_09_bind_never_resurrects_a_deleted_session(stores: Stores) -> None:
    s = session("u1")
    await stores.sessions.add(s)
    assert await stores.sessions.delete(s.id_digest)
    assert not await stores.sessions.bind(s.id_digest, DEVICE_KEY)
    assert await stores.sessions.get(s.id_digest) is None
    assert not await stores.sessions.bind("0" * 64, DEVICE_KEY)


async def test_rotation_carries_what_the_new_record_says(stores: Stores) -> None:
    old = dataclasses.replace(session("u1", 1), device_key=DEVICE_KEY, claims=CLAIMS)
    await stores.sessions.add(old)
    new = dataclasses.replace(session("u1", 2), device_key=DEVICE_KEY, claims=CLAIMS)
    assert await stores.sessions.rotate(old.id_digest, new)
    assert await stores.sessions.get(new.id_digest) == new


async def test_email_verification_is_recorded_and_cleared(stores: Stores) -> None:
    await stores.users.add(user(1))
    fetched = await stores.users.get(user(1).id)
    assert fetched is not None
    assert fetched.email_verified_at is None
    await stores.users.set_email_verified(user(1).id, NOW)
    verified = await stores.users.get(user(1).id)
    assert verified is not None
    assert verified.email_verified_at == NOW
    by_email = await stores.users.get_by_email(user(1).email)
    assert by_email == verified
    await stores.users.set_email_verified(user(1).id, None)
    cleared = await stores.users.get(user(1).id)
    assert cleared is not None
    assert cleared.email_verified_at is None


async def test_a_user_created_verified_reads_back_verified(stores: Stores) -> None:
    verified = dataclasses.replace(user(2), email_verified_at=NOW - timedelta(days=1))
    await stores.users.add(verified)
    assert await stores.users.get(verified.id) == verified


async def test_a_family_keeps_its_key_thumbprint(stores: Stores) -> None:
    bound = dataclasses.replace(family("f1"), jkt="0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
    token = new_secret()
    await stores.refresh.create(bound, secret_digest(token))
    assert await stores.refresh.get("f1") == bound
    assert await stores.refresh.find(secret_digest(token)) == (bound, 0)
    assert list(await stores.refresh.list_for_user(bound.user_id)) == [bound]
    revoked = await stores.refresh.revoke("f1", NOW)
    assert revoked == bound
    unbound = family("f2")
    await stores.refresh.create(unbound, secret_digest(new_secret()))
    got = await stores.refresh.get("f2")
    assert got is not None
    assert got.jkt is None
