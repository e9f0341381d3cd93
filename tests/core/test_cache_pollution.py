"""Cache pollution: floods of forged, unknown or one-off credentials leave real traffic's
entries in the verified-token cache and the session near-cache (hit ratio >= 95%).

Deterministic: counts of hits and misses, no timing. Real traffic is a set of
credentials each used over and over, in rounds; between two real requests the flood
sends credentials that are forged (bad signature, unknown key, garbage, validly signed
for another audience), unknown, or valid but used once.
"""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta

from tests.stores.test_cached_sessions import Bus, FakeMonotonic
from tests.stores.test_contract import session
from tests.support.services import ORIGIN, started_service
from velvetrope import FrozenClock
from velvetrope.core.ids import new_secret, secret_digest
from velvetrope.core.passwords import PasswordHasher
from velvetrope.core.tokens import codec
from velvetrope.core.tokens.access import TokenPolicy
from velvetrope.errors import InvalidToken
from velvetrope.stores import CachedSessionStore, MemoryStores
from velvetrope.stores.bounded import SegmentedCache

PASSWORD = "correct horse battery staple 42"
REAL = 200  # credentials of real traffic
ROUNDS = 10  # each used this often while the flood runs (after one use to warm up)
FLOOD = 5  # forged/unknown credentials between two real requests
TARGET = 0.95


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_PERF_02_forged_and_one_off_tokens_leave_the_verified_token_cache_to_real_traffic(
    clock: FrozenClock, hasher: PasswordHasher
) -> None:
    policy = TokenPolicy(issuer=ORIGIN, audience=ORIGIN, cache_size=1000)
    node = await started_service(MemoryStores(), clock=clock, hasher=hasher, token_policy=policy)
    access = node.tokens.access
    user = await node.register("ann@example.com", PASSWORD)
    family = (await node.token_login("ann@example.com", PASSWORD)).family.id
    real = [access.issue(user_id=user.id, family_id=family).token for _ in range(REAL)]
    signer = access.keys.signing_key
    foreign_key = codec.generate_jwk("EdDSA")

    def forged(n: int) -> str:
        model = real[n % REAL]
        head, body, _ = model.split(".")
        kind = n % 4
        if kind == 0:  # our header and claims, a signature by nobody
            return f"{head}.{body}.{_b64(secrets.token_bytes(64))}"
        if kind == 1:  # a key we do not know
            return codec.sign_compact(
                {"sub": "x", "n": n}, key=foreign_key, alg="EdDSA", kid=f"k{n}", typ="at+jwt"
            )
        if kind == 2:  # garbage
            return f"{_b64(secrets.token_bytes(20))}.{_b64(secrets.token_bytes(40))}.x"
        # validly signed with our key, for another audience
        claims = {**access.issue(user_id=user.id, family_id=family).claims.raw, "aud": "x"}
        return codec.sign_compact(
            claims, key=signer.jwk, alg=signer.alg, kid=signer.kid, typ="at+jwt"
        )

    for token in real:  # first uses: misses with or without a flood
        await access.verify(token)

    async def real_traffic(flood: object) -> float:
        hits = misses = 0
        n = 0
        for _round in range(ROUNDS):
            for token in real:
                before = access.hits
                await access.verify(token)
                hits, misses = (hits + 1, misses) if access.hits > before else (hits, misses + 1)
                for _ in range(FLOOD):
                    n += 1
                    await flood(n)  # type: ignore[operator]
        return hits / (hits + misses)

    async def forged_flood(n: int) -> None:
        try:
            await access.verify(forged(n))
        except InvalidToken:
            return
        raise AssertionError("a forged token verified")

    ratio = await real_traffic(forged_flood)
    assert ratio >= TARGET, ratio
    assert all(token in access._cache for token in real)

    # Valid tokens used once each (a client refreshing in a loop): real traffic keeps
    # its entries in the protected segment; the one-off tokens churn probation only.
    async def one_off_flood(_: int) -> None:
        await access.verify(access.issue(user_id=user.id, family_id=family).token)

    ratio = await real_traffic(one_off_flood)
    assert ratio >= TARGET, ratio
    assert len(access._cache) <= policy.cache_size
    await node.aclose()


async def test_PERF_02_unknown_and_one_off_sessions_keep_out_of_the_near_cache() -> None:
    inner = MemoryStores().sessions
    cache = CachedSessionStore(inner, Bus(), ttl=timedelta(minutes=1), max_entries=1000)
    cache._monotonic = FakeMonotonic()  # entries never go stale during the test
    await cache.start()
    real = [session(f"user{n}", n) for n in range(REAL)]
    for record in real:
        await inner.add(record)
    one_offs = 0
    for record in real:  # first reads: misses with or without a flood
        await cache.get(record.id_digest)

    async def real_traffic(one_off: bool) -> float:
        nonlocal one_offs
        before = cache.status()
        for _round in range(ROUNDS):
            for record in real:
                assert await cache.get(record.id_digest) == record
                for _ in range(FLOOD):
                    if one_off:  # a session that exists, read once
                        one_offs += 1
                        extra = session(f"drive-by{one_offs}", one_offs)
                        await inner.add(extra)
                        assert await cache.get(extra.id_digest) == extra
                    else:  # an ID nobody holds
                        assert await cache.get(secret_digest(new_secret())) is None
        after = cache.status()
        hits = after.hits - before.hits
        return hits / (REAL * ROUNDS)

    assert await real_traffic(one_off=False) >= TARGET
    assert await real_traffic(one_off=True) >= TARGET
    assert cache.status().entries <= 1000
    await cache.aclose()


def test_PERF_02_the_segmented_cache_keeps_reused_keys_over_one_off_keys() -> None:
    cache: SegmentedCache[str, int] = SegmentedCache(10)
    for key in "abcde":
        cache.put(key, 1)
        assert cache.get(key) == 1  # used twice: protected
    evicted = []
    for n in range(100):
        evicted += cache.put(f"once{n}", n)
    assert all(key in cache for key in "abcde")
    assert len(cache) == 10
    assert {k for k, _ in evicted}.isdisjoint("abcde")
    # A full protected segment demotes its coldest key to probation, never drops it.
    small: SegmentedCache[str, int] = SegmentedCache(4, protected_share=0.5)
    for key in "wxyz":
        small.put(key, 0)
        small.get(key)
    assert len(small) == 4
    assert all(key in small for key in "wxyz")
