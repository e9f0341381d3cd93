"""Internal tokens: their own typ, audience, claims, lifetime and key ring (HYB-01..HYB-05)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from tests.support.services import PASSWORD, gateway_for
from velvetrope import AuthService, FrozenClock
from velvetrope.core.gateway import (
    INTERNAL_PURPOSE,
    INTERNAL_TYP,
    Gateway,
    GatewayPolicy,
    InternalClaims,
    validate_internal_claims,
)
from velvetrope.core.principal import Principal
from velvetrope.core.tokens import codec
from velvetrope.core.tokens.keys import KeyRing
from velvetrope.errors import InvalidToken

ISSUER = "https://edge.example"
POLICY = GatewayPolicy(issuer=ISSUER, audiences=frozenset({"orders", "billing"}))


@pytest.fixture
async def gateway(service: AuthService, clock: FrozenClock) -> Gateway:
    made = gateway_for(service, POLICY, clock)
    await made.start()
    return made


@pytest.fixture
async def principal(service: AuthService) -> Principal:
    await service.register("ann@example.com", PASSWORD)
    signed = await service.login("ann@example.com", PASSWORD)
    return await service.authenticate(signed.session.secret)


def claims_of(
    gateway: Gateway, token: str, clock: FrozenClock, audience: str = "orders"
) -> tuple[codec.Decoded, InternalClaims]:
    decoded = codec.decode_compact(token, gateway.tokens.keys.lookup, typ=INTERNAL_TYP)
    return decoded, validate_internal_claims(
        decoded.claims, issuer=ISSUER, audience=audience, now=clock(), leeway=timedelta(0)
    )


async def test_HYB_03_internal_tokens_carry_their_own_typ(
    gateway: Gateway, principal: Principal, clock: FrozenClock
) -> None:
    minted = await gateway.token_for(principal, "orders")
    decoded, _ = claims_of(gateway, minted.token, clock)
    assert decoded.header["typ"] == INTERNAL_TYP
    with pytest.raises(InvalidToken):
        codec.decode_compact(minted.token, gateway.tokens.keys.lookup, typ="at+jwt")


async def test_HYB_08_a_token_is_for_one_audience_only(
    gateway: Gateway, principal: Principal, clock: FrozenClock
) -> None:
    minted = await gateway.token_for(principal, "orders")
    decoded, _ = claims_of(gateway, minted.token, clock)
    assert decoded.claims["aud"] == "orders"
    assert decoded.claims["iss"] == ISSUER
    with pytest.raises(InvalidToken):
        claims_of(gateway, minted.token, clock, audience="billing")
    with pytest.raises(ValueError, match="audience"):
        gateway.tokens.mint(
            user_id="u", handle="h", audience="payroll", not_after=clock() + timedelta(hours=1)
        )


async def test_HYB_03_the_claims_name_the_user_the_session_handle_and_the_app_claims(
    gateway: Gateway, principal: Principal, clock: FrozenClock
) -> None:
    session = principal.session
    assert session is not None
    with_claims = dataclasses.replace(
        principal,
        session=dataclasses.replace(session, claims={"roles": ["admin"], "sub": "forged"}),
    )
    minted = await gateway.token_for(with_claims, "orders")
    decoded, claims = claims_of(gateway, minted.token, clock)
    assert set(decoded.claims) == {"iss", "aud", "sub", "sid", "jti", "iat", "nbf", "exp", "roles"}
    assert claims.sub == principal.user_id  # an application claim never overrides one of ours
    assert claims.sid == session.handle  # the public handle, never the session ID
    assert decoded.claims["roles"] == ["admin"]
    assert session.id_digest not in minted.token


async def test_HYB_02_a_token_lives_60_seconds_and_never_past_the_session(
    gateway: Gateway, principal: Principal, clock: FrozenClock, service: AuthService
) -> None:
    minted = await gateway.token_for(principal, "orders")
    _, claims = claims_of(gateway, minted.token, clock)
    assert claims.expires_at - claims.issued_at <= timedelta(seconds=60)
    assert claims.expires_at - clock() == timedelta(seconds=60)
    session = principal.session
    assert session is not None
    ending = dataclasses.replace(session, expires_at=clock() + timedelta(seconds=20))
    short = await gateway.token_for(dataclasses.replace(principal, session=ending), "billing")
    assert short.expires_at == ending.expires_at


async def test_HYB_05_the_internal_key_ring_is_not_the_access_token_ring(
    gateway: Gateway, principal: Principal, service: AuthService
) -> None:
    internal = {k.kid for k in gateway.tokens.keys.keys()}  # noqa: SIM118 - a KeyRing method
    access = {k.kid for k in service.tokens.keys.keys()}  # noqa: SIM118 - a KeyRing method
    assert internal
    assert not internal & access
    assert gateway.tokens.keys.purpose == INTERNAL_PURPOSE
    minted = await gateway.token_for(principal, "orders")
    with pytest.raises(InvalidToken):  # an internal token is never a browser access token
        await service.tokens.verify(minted.token)
    pair = await service.tokens.issue_for(principal.user_id)
    with pytest.raises(InvalidToken):  # nor the reverse
        codec.decode_compact(pair.access_token, gateway.tokens.keys.lookup, typ=INTERNAL_TYP)
    jwks = gateway.jwks()["keys"]
    assert {k["kid"] for k in jwks} == internal
    assert all("d" not in k for k in jwks)


async def test_HYB_05_every_node_publishes_every_nodes_key(
    gateway: Gateway, service: AuthService, principal: Principal, clock: FrozenClock
) -> None:
    """Two nodes that start together on an empty store each make a key: whichever node
    a service fetches the JWKS from, it learns the key the other node signs with."""
    other = gateway_for(service, POLICY, clock)
    await other.tokens.keys.rotate()  # the other node made its key after this one read
    minted = await other.token_for(principal, "orders")
    theirs = other.tokens.keys.signing_key.kid
    assert theirs not in {k["kid"] for k in gateway.jwks()["keys"]}  # this node's copy
    clock.advance(timedelta(seconds=1))
    published = {k["kid"] for k in (await gateway.published_jwks())["keys"]}
    assert theirs in published
    assert gateway.tokens.keys.signing_key.kid in published  # retired, still verifying
    decoded, _ = claims_of(gateway, minted.token, clock)  # this node now verifies it too
    assert decoded.header["kid"] == theirs
    # The same for access tokens: a key another node made is published here too.
    ring = service.tokens.keys
    elsewhere = KeyRing(
        service.stores.keys, purpose=ring.purpose, alg=ring.alg, overlap=ring.overlap, now=clock
    )
    made = await elsewhere.rotate()
    assert made.kid not in {k["kid"] for k in service.jwks()["keys"]}
    assert made.kid in {k["kid"] for k in (await service.published_jwks())["keys"]}


def test_the_policy_refuses_symmetric_keys_long_lives_and_no_audience() -> None:
    with pytest.raises(ValueError, match="EdDSA"):
        GatewayPolicy(issuer=ISSUER, audiences=frozenset({"a"}), algorithm="HS256")
    with pytest.raises(ValueError, match="lifetime"):
        GatewayPolicy(issuer=ISSUER, audiences=frozenset({"a"}), ttl=timedelta(hours=1))
    with pytest.raises(ValueError, match="audience"):
        GatewayPolicy(issuer=ISSUER, audiences=frozenset())


def test_a_token_claiming_a_long_life_is_refused(clock: FrozenClock) -> None:
    now = clock().timestamp()
    claims = {
        "iss": ISSUER,
        "aud": "orders",
        "sub": "u",
        "sid": "h",
        "jti": "j" * 22,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    }
    with pytest.raises(InvalidToken) as refused:
        validate_internal_claims(
            claims, issuer=ISSUER, audience="orders", now=clock(), leeway=timedelta(0)
        )
    assert refused.value.reason == "lifetime too long"


async def test_HYB_07_pushed_topics_evict_what_they_name(
    gateway: Gateway, principal: Principal, clock: FrozenClock
) -> None:
    """The push topics every node applies to its mint cache (no notifier here: applied
    by hand, as the listener would)."""
    session = principal.session
    assert session is not None

    async def fill() -> None:
        gateway.cache.clear()
        await gateway.token_for(principal, "orders")
        assert len(gateway.cache) == 1

    for topic in (
        f"gateway-revoked:session:{session.handle}",
        f"gateway-revoked:user:{principal.user_id}@{int(clock().timestamp() * 1000)}",
        f"user-sessions:{principal.user_id}",
        f"sessions-expired:{(session.expires_at + timedelta(seconds=1)).isoformat()}",
        "sessions-expired:not-an-instant",  # unreadable: forget everything
    ):
        await fill()
        await gateway.on_push(topic)
        assert len(gateway.cache) == 0, topic
    await fill()
    for unrelated in ("revocations", "keys", "session:abc", "gateway-revoked:user:no-cutoff"):
        await gateway.on_push(unrelated)
    assert len(gateway.cache) == 1
    await gateway.on_push(f"sessions-expired:{(clock() - timedelta(hours=1)).isoformat()}")
    assert len(gateway.cache) == 1  # sessions that ended an hour ago are not this one
