"""Refresh-token families: rotation, reuse detection, grace window (RT-01..RT-07).

Every backend: rotation must be atomic (RT-05), a rotated token must stay findable for
reuse detection and the grace window, and expiry is read from stored timestamps.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from tests.support.proofs import ProofKey
from tests.support.services import PASSWORD, TOKEN_POLICY
from tests.support.stores import every_backend
from velvetrope import AuthService, FrozenClock
from velvetrope.core.binding.dpop import DPoPPolicy
from velvetrope.core.ids import is_well_formed_secret, secret_digest
from velvetrope.core.tokens.service import TokenPair
from velvetrope.errors import DPoPProofRefused, InvalidGrant, InvalidToken, RefreshTokenReused

pytestmark = every_backend  # rotation, reuse and grace are the refresh store's semantics


async def pair(service: AuthService) -> TokenPair:
    if await service.stores.users.get_by_email("ann@example.com") is None:
        await service.register("ann@example.com", PASSWORD)
    return await service.token_login("ann@example.com", PASSWORD)


async def test_RT_01_refresh_tokens_are_opaque_256_bit_and_stored_hashed(
    service: AuthService,
) -> None:
    issued = await pair(service)
    assert is_well_formed_secret(issued.refresh_token)
    assert "." not in issued.refresh_token  # not a JWT
    found = await service.stores.refresh.find(secret_digest(issued.refresh_token))
    assert found is not None
    assert issued.refresh_token not in repr(found)


async def test_RT_02_every_refresh_returns_a_new_token_and_the_old_one_dies(
    service: AuthService, clock: FrozenClock
) -> None:
    first = await pair(service)
    second = await service.tokens.refresh_grant(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    clock.advance(TOKEN_POLICY.refresh_grace + timedelta(seconds=1))
    with pytest.raises(InvalidGrant):
        await service.tokens.refresh_grant(first.refresh_token)


async def test_RT_03_replay_revokes_the_whole_family_including_the_newest_pair(
    service: AuthService, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="velvetrope.events")
    first = await pair(service)
    second = await service.tokens.refresh_grant(first.refresh_token)
    await service.authenticate_bearer(second.access_token)
    clock.advance(TOKEN_POLICY.refresh_grace + timedelta(seconds=1))
    with pytest.raises(InvalidGrant, match="already used"):
        await service.tokens.refresh_grant(first.refresh_token)  # the thief, or the victim
    with pytest.raises(InvalidGrant):
        await service.tokens.refresh_grant(second.refresh_token)  # the other party too
    with pytest.raises(InvalidToken):
        await service.authenticate_bearer(second.access_token)  # and its access token
    with pytest.raises(InvalidToken):
        await service.authenticate_bearer(first.access_token)
    assert "refresh_reuse_detected" in [getattr(r, "event", None) for r in caplog.records]
    assert first.refresh_token not in caplog.text


async def test_RT_04_a_retry_inside_the_grace_window_gets_the_same_pair(
    service: AuthService, clock: FrozenClock
) -> None:
    first = await pair(service)
    second = await service.tokens.refresh_grant(first.refresh_token)
    clock.advance(TOKEN_POLICY.refresh_grace - timedelta(seconds=1))
    retried = await service.tokens.refresh_grant(first.refresh_token)
    assert retried.refresh_token == second.refresh_token
    assert retried.access_token == second.access_token  # EdDSA signs deterministically
    third = await service.tokens.refresh_grant(retried.refresh_token)  # the family lives on
    await service.authenticate_bearer(third.access_token)


async def test_RT_04_outside_the_grace_window_a_retry_is_theft(
    service: AuthService, clock: FrozenClock
) -> None:
    first = await pair(service)
    await service.tokens.refresh_grant(first.refresh_token)
    clock.advance(TOKEN_POLICY.refresh_grace + timedelta(seconds=1))
    with pytest.raises(InvalidGrant, match="already used"):
        await service.tokens.refresh_grant(first.refresh_token)


async def test_RT_04_grace_covers_only_the_previous_token(
    service: AuthService, clock: FrozenClock
) -> None:
    first = await pair(service)
    second = await service.tokens.refresh_grant(first.refresh_token)
    await service.tokens.refresh_grant(second.refresh_token)
    with pytest.raises(InvalidGrant, match="already used"):  # two generations back
        await service.tokens.refresh_grant(first.refresh_token)


async def test_RT_05_concurrent_refreshes_of_one_token_yield_one_pair(
    service: AuthService,
) -> None:
    first = await pair(service)
    results = await asyncio.gather(
        *(service.tokens.refresh_grant(first.refresh_token) for _ in range(20))
    )
    assert len({r.refresh_token for r in results}) == 1
    family = await service.stores.refresh.get(first.family.id)
    assert family is not None
    assert family.generation == 1
    assert family.revoked_at is None


async def test_RT_06_absolute_expiry_holds_even_with_constant_use(
    service: AuthService, clock: FrozenClock
) -> None:
    current = await pair(service)
    step = timedelta(hours=12)
    elapsed = timedelta(0)
    while elapsed + step < TOKEN_POLICY.refresh_absolute_lifetime:
        clock.advance(step)
        elapsed += step
        current = await service.tokens.refresh_grant(current.refresh_token)
    clock.advance(TOKEN_POLICY.refresh_absolute_lifetime - elapsed)
    with pytest.raises(InvalidGrant, match="expired"):
        await service.tokens.refresh_grant(current.refresh_token)


async def test_RT_06_idle_expiry(service: AuthService, clock: FrozenClock) -> None:
    issued = await pair(service)
    clock.advance(TOKEN_POLICY.refresh_idle_timeout)
    with pytest.raises(InvalidGrant, match="expired"):
        await service.tokens.refresh_grant(issued.refresh_token)


async def test_access_tokens_never_outlive_their_family(
    service: AuthService, clock: FrozenClock
) -> None:
    current = await pair(service)
    end = current.family.expires_at
    while clock() + timedelta(hours=12) < end - timedelta(minutes=5):
        clock.advance(timedelta(hours=12))
        current = await service.tokens.refresh_grant(current.refresh_token)
    clock.advance(end - timedelta(minutes=5) - clock())
    last = await service.tokens.refresh_grant(current.refresh_token)
    assert last.expires_in == 300  # capped at the family's end, not the full 15 minutes
    claims = await service.tokens.access.verify(last.access_token)
    assert claims.expires_at == end


async def test_RT_07_revocable_one_by_one_and_all_at_once(service: AuthService) -> None:
    one, two, three = await pair(service), await pair(service), await pair(service)
    await service.tokens.revoke_token(one.refresh_token)  # RFC 7009, one family
    with pytest.raises(InvalidGrant):
        await service.tokens.refresh_grant(one.refresh_token)
    with pytest.raises(InvalidToken):
        await service.authenticate_bearer(one.access_token)
    await service.tokens.refresh_grant(two.refresh_token)  # others unaffected
    user = await service.stores.users.get_by_email("ann@example.com")
    assert user is not None
    assert await service.tokens.revoke_user(user.id) == 2
    for gone in (two, three):
        with pytest.raises(InvalidGrant):
            await service.tokens.refresh_grant(gone.refresh_token)
    with pytest.raises(InvalidToken):
        await service.authenticate_bearer(three.access_token)


async def test_DPOP_11_a_refresh_with_a_proof_binds_an_unbound_family(
    service: AuthService,
) -> None:
    owner, thief = ProofKey().jkt, ProofKey().jkt
    first = await pair(service)  # a family opened without a proof
    assert first.family.jkt is None
    second = await service.refresh_grant(first.refresh_token, jkt=owner)
    stored = await service.stores.refresh.get(first.family.id)
    assert stored is not None
    assert stored.jkt == owner
    assert (await service.tokens.access.verify(second.access_token)).jkt == owner
    for other in (None, thief):
        with pytest.raises(DPoPProofRefused, match="bound to a key"):
            await service.refresh_grant(second.refresh_token, jkt=other)
    third = await service.refresh_grant(second.refresh_token, jkt=owner)  # nothing was spent
    assert (third.family.generation, third.family.jkt) == (2, owner)


async def test_DPOP_11_a_retry_of_the_binding_refresh_needs_the_same_key(
    service: AuthService,
) -> None:
    owner = ProofKey().jkt
    first = await pair(service)
    second = await service.refresh_grant(first.refresh_token, jkt=owner)
    retried = await service.refresh_grant(first.refresh_token, jkt=owner)  # inside the grace
    assert retried.refresh_token == second.refresh_token


@pytest.mark.parametrize("other", [None, "thief"], ids=["no-proof", "another-key"])
async def test_DPOP_11_a_retry_inside_the_grace_by_another_client_is_reuse(
    service: AuthService, other: str | None
) -> None:
    """The same old token from a second client (no key, or another key) right after the
    binding refresh: two clients hold it, so the family ends (RT-03), not a mere refusal."""
    owner = ProofKey().jkt
    first = await pair(service)
    second = await service.refresh_grant(first.refresh_token, jkt=owner)
    with pytest.raises(RefreshTokenReused):
        await service.refresh_grant(first.refresh_token, jkt=ProofKey().jkt if other else None)
    with pytest.raises(InvalidGrant):
        await service.refresh_grant(second.refresh_token, jkt=owner)


async def test_DPOP_11_a_thief_who_binds_the_family_first_is_caught_by_reuse_detection(
    service: AuthService, clock: FrozenClock
) -> None:
    """A stolen refresh token of an unbound family, refreshed by the thief with their own
    key: the owner's later refresh with the old token is reuse, and the whole family
    (the thief's new, key-bound tokens included) ends."""
    thief = ProofKey().jkt
    stolen = await pair(service)
    taken = await service.refresh_grant(stolen.refresh_token, jkt=thief)
    assert taken.family.jkt == thief
    clock.advance(TOKEN_POLICY.refresh_grace + timedelta(seconds=1))
    with pytest.raises(RefreshTokenReused):
        await service.refresh_grant(stolen.refresh_token)  # the owner, without a proof
    with pytest.raises(InvalidGrant):
        await service.refresh_grant(taken.refresh_token, jkt=thief)
    family = await service.stores.refresh.get(stolen.family.id)
    assert family is not None
    assert family.revoked_at is not None


async def test_DPOP_11_racing_refreshes_with_two_keys_end_the_family(
    service: AuthService,
) -> None:
    """Two clients refreshing the same token at once with different keys: one rotation
    wins (and binds to its key), the other is reuse, and the family ends."""
    keys = [ProofKey().jkt, ProofKey().jkt]
    first = await pair(service)
    results = await asyncio.gather(
        *(service.refresh_grant(first.refresh_token, jkt=jkt) for jkt in keys),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, TokenPair)]
    assert len(won) == 1, results
    assert [type(r) for r in results if not isinstance(r, TokenPair)] == [RefreshTokenReused]
    family = await service.stores.refresh.get(first.family.id)
    assert family is not None
    assert family.jkt == keys[results.index(won[0])]
    assert family.revoked_at is not None


async def test_DPOP_11_under_require_a_refresh_without_a_proof_is_refused(
    service: AuthService,
) -> None:
    service.dpop.policy = DPoPPolicy(mode="require")
    first = await pair(service)  # opened before require was switched on: unbound
    with pytest.raises(DPoPProofRefused, match="requires DPoP") as refused:
        await service.refresh_grant(first.refresh_token)
    assert refused.value.code == "invalid_dpop_proof"
    stored = await service.stores.refresh.get(first.family.id)
    assert stored is not None
    assert (stored.generation, stored.jkt) == (0, None)  # nothing was spent
    key = ProofKey().jkt
    second = await service.refresh_grant(first.refresh_token, jkt=key)
    assert second.family.jkt == key


@pytest.mark.parametrize("garbage", ["", "x", "A" * 43, "A" * 44, "a.b.c", "é" * 43])
async def test_unknown_or_malformed_refresh_tokens_are_invalid_grant(
    service: AuthService, garbage: str
) -> None:
    with pytest.raises(InvalidGrant):
        await service.tokens.refresh_grant(garbage)
