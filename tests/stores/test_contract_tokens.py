"""Token-state contract (keys, refresh families, revocation feed), run against every backend."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

from velvetrope.core.ids import new_secret, secret_digest
from velvetrope.stores import Stores
from velvetrope.stores.records import KeyRecord, RefreshFamilyRecord, RevocationRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def key(kid: str, n: int, purpose: str = "access") -> KeyRecord:
    return KeyRecord(
        kid=kid, purpose=purpose, alg="EdDSA", private_jwk="{}", created_at=T0 + timedelta(n)
    )


def family(fid: str = "f1", user: str = "u1", n: int = 0) -> RefreshFamilyRecord:
    return RefreshFamilyRecord(
        id=fid,
        user_id=user,
        created_at=T0 + timedelta(seconds=n),
        last_used_at=T0 + timedelta(seconds=n),
        expires_at=T0 + timedelta(days=30, seconds=n),
        authenticated_at=T0 + timedelta(seconds=n),
        generation=0,
        rotated_at=T0 + timedelta(seconds=n),
        ip="192.0.2.1",
        user_agent="agent",
    )


async def test_keys_list_newest_first_per_purpose(stores: Stores) -> None:
    await stores.keys.add_key(key("old", 1))
    await stores.keys.add_key(key("new", 2))
    await stores.keys.add_key(key("other", 3, purpose="internal"))
    assert [k.kid for k in await stores.keys.list_keys("access")] == ["new", "old"]
    assert [k.kid for k in await stores.keys.list_keys("internal")] == ["other"]


async def test_retire_keeps_one_signer_and_expired_keys_go(stores: Stores) -> None:
    await stores.keys.add_key(key("old", 1))
    await stores.keys.add_key(key("new", 2))
    until = T0 + timedelta(days=3)
    assert await stores.keys.retire_keys("access", keep="new", at=T0 + timedelta(2), until=until)
    by_kid = {k.kid: k for k in await stores.keys.list_keys("access")}
    assert by_kid["new"].retired_at is None
    assert by_kid["old"].retired_at == T0 + timedelta(2)
    assert by_kid["old"].expires_at == until
    assert await stores.keys.delete_expired_keys(until - timedelta(seconds=1)) == 0
    assert await stores.keys.delete_expired_keys(until) == 1
    assert [k.kid for k in await stores.keys.list_keys("access")] == ["new"]


async def test_secret_is_stored_once_and_shared(stores: Stores) -> None:
    first = await stores.keys.secret("s", "candidate-1")
    second = await stores.keys.secret("s", "candidate-2")
    assert first == second == "candidate-1"


async def test_refresh_family_round_trip_and_find_by_digest(stores: Stores) -> None:
    token = new_secret()
    await stores.refresh.create(family(), secret_digest(token))
    assert await stores.refresh.get("f1") == family()
    assert await stores.refresh.find(secret_digest(token)) == (family(), 0)
    assert await stores.refresh.find(secret_digest(new_secret())) is None


async def test_RT_02_rotation_advances_generation_and_old_digests_stay_findable(
    stores: Stores,
) -> None:
    first, second = new_secret(), new_secret()
    await stores.refresh.create(family(), secret_digest(first))
    now = T0 + timedelta(minutes=5)
    assert await stores.refresh.rotate(
        "f1", from_generation=0, digest=secret_digest(second), now=now
    )
    rotated = await stores.refresh.get("f1")
    assert rotated == dataclasses.replace(family(), generation=1, rotated_at=now, last_used_at=now)
    assert await stores.refresh.find(secret_digest(first)) == (rotated, 0)
    assert await stores.refresh.find(secret_digest(second)) == (rotated, 1)
    assert not await stores.refresh.rotate(
        "f1", from_generation=0, digest=secret_digest(new_secret()), now=now
    )


async def test_RT_05_concurrent_rotations_have_exactly_one_winner(stores: Stores) -> None:
    await stores.refresh.create(family(), secret_digest(new_secret()))
    results = await asyncio.gather(
        *(
            stores.refresh.rotate(
                "f1", from_generation=0, digest=secret_digest(new_secret()), now=T0
            )
            for _ in range(20)
        )
    )
    assert results.count(True) == 1
    rotated = await stores.refresh.get("f1")
    assert rotated is not None
    assert rotated.generation == 1


JKT_A = "A" * 43
JKT_B = "B" * 43


async def test_DPOP_11_a_rotation_with_a_key_binds_an_unbound_family_in_the_same_write(
    stores: Stores,
) -> None:
    first, second, third = new_secret(), new_secret(), new_secret()
    await stores.refresh.create(family(), secret_digest(first))
    now = T0 + timedelta(minutes=5)
    assert await stores.refresh.rotate(
        "f1", from_generation=0, digest=secret_digest(second), now=now, jkt=JKT_A
    )
    bound = dataclasses.replace(family(), generation=1, rotated_at=now, last_used_at=now, jkt=JKT_A)
    assert await stores.refresh.get("f1") == bound
    assert await stores.refresh.find(secret_digest(first)) == (bound, 0)
    # Without a key the binding stays as it is: a bound family is never unbound.
    assert await stores.refresh.rotate(
        "f1", from_generation=1, digest=secret_digest(third), now=now
    )
    rotated = await stores.refresh.get("f1")
    assert rotated is not None
    assert (rotated.generation, rotated.jkt) == (2, JKT_A)


async def test_DPOP_11_a_family_bound_to_one_key_never_rotates_for_another(
    stores: Stores,
) -> None:
    await stores.refresh.create(dataclasses.replace(family(), jkt=JKT_A), "d0")
    stolen = secret_digest(new_secret())
    assert not await stores.refresh.rotate(
        "f1", from_generation=0, digest=stolen, now=T0, jkt=JKT_B
    )
    assert await stores.refresh.get("f1") == dataclasses.replace(family(), jkt=JKT_A)
    assert await stores.refresh.find(stolen) is None  # nothing was written
    assert await stores.refresh.rotate(
        "f1", from_generation=0, digest=secret_digest(new_secret()), now=T0, jkt=JKT_A
    )


async def test_DPOP_11_racing_rotations_with_two_keys_bind_the_family_to_the_winner(
    stores: Stores,
) -> None:
    await stores.refresh.create(family(), secret_digest(new_secret()))
    keys = [JKT_A, JKT_B] * 10
    results = await asyncio.gather(
        *(
            stores.refresh.rotate(
                "f1", from_generation=0, digest=secret_digest(new_secret()), now=T0, jkt=jkt
            )
            for jkt in keys
        )
    )
    assert results.count(True) == 1
    rotated = await stores.refresh.get("f1")
    assert rotated is not None
    assert rotated.generation == 1
    assert rotated.jkt == keys[results.index(True)]


async def test_revoked_family_cannot_rotate_and_is_not_listed(stores: Stores) -> None:
    await stores.refresh.create(family(), secret_digest(new_secret()))
    revoked = await stores.refresh.revoke("f1", T0)
    assert revoked == family()
    assert await stores.refresh.revoke("f1", T0) is None  # only once
    assert not await stores.refresh.rotate(
        "f1", from_generation=0, digest=secret_digest(new_secret()), now=T0
    )
    assert await stores.refresh.list_for_user("u1") == []
    stored = await stores.refresh.get("f1")
    assert stored is not None
    assert stored.revoked_at == T0


async def test_revoke_for_user_spares_kept_family_and_other_users(stores: Stores) -> None:
    for fid, user, n in [("a", "u1", 1), ("b", "u1", 2), ("c", "u1", 3), ("d", "u2", 4)]:
        await stores.refresh.create(family(fid, user, n), secret_digest(new_secret()))
    assert sorted(await stores.refresh.revoke_for_user("u1", T0, keep="b")) == ["a", "c"]
    assert [f.id for f in await stores.refresh.list_for_user("u1")] == ["b"]
    assert [f.id for f in await stores.refresh.list_for_user("u2")] == ["d"]


async def test_purge_drops_expired_families_and_their_digests(stores: Stores) -> None:
    token = new_secret()
    await stores.refresh.create(family(), secret_digest(token))
    assert await stores.refresh.purge_expired(family().expires_at) == 1
    assert await stores.refresh.get("f1") is None
    assert await stores.refresh.find(secret_digest(token)) is None


async def test_revocation_feed_is_ordered_and_replayable(stores: Stores) -> None:
    a = RevocationRecord("jti", "j1", T0, T0 + timedelta(minutes=15))
    b = RevocationRecord("user", "u1", T0, T0 + timedelta(days=30))
    first = await stores.revocations.append(a)
    second = await stores.revocations.append(b)
    assert second > first
    assert await stores.revocations.since(0) == [(first, a), (second, b)]
    assert await stores.revocations.since(first) == [(second, b)]
    assert await stores.revocations.purge_expired(T0 + timedelta(minutes=15)) == 1
    assert await stores.revocations.since(0) == [(second, b)]
    third = await stores.revocations.append(a)
    assert third > second  # sequence numbers are never reused


async def test_concurrent_rotations_leave_exactly_one_signer(stores: Stores) -> None:
    """Two processes rotate at once: add A, add B, retire-all-but-A, retire-all-but-B."""
    await stores.keys.add_key(key("old", 0))
    await stores.keys.add_key(key("a", 1))
    await stores.keys.add_key(key("b", 2))
    until = T0 + timedelta(days=5)
    await stores.keys.retire_keys("access", keep="a", at=T0 + timedelta(3), until=until)
    await stores.keys.retire_keys("access", keep="b", at=T0 + timedelta(3), until=until)
    signers = [k.kid for k in await stores.keys.list_keys("access") if k.retired_at is None]
    assert signers == ["b"]
