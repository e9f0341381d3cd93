"""DPoP over HTTP (RFC 9449), across two nodes sharing PostgreSQL or Redis.

Tokens are obtained on node A and used on node B; every refusal carries the RFC's
error: ``invalid_token`` for a token without its key, ``invalid_dpop_proof`` for a
proof that fails a check, ``use_dpop_nonce`` with the ``DPoP-Nonce`` to use. A proof
replayed to the other node is refused: the replay cache is the shared store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.nodes import SHARED_STORES, Node, two_nodes
from tests.support.proofs import ProofKey, b64, forge, jws
from tests.support.services import ORIGIN, PASSWORD
from velvetrope import FrozenClock, PasswordHasher
from velvetrope.core.binding.dpop import DPoPPolicy, access_token_hash

EMAIL = "ann@example.com"
TOKEN = f"{ORIGIN}/auth/token"
ME = f"{ORIGIN}/auth/me"
ALGS = 'algs="ES256 EdDSA RS256 PS256"'


@pytest.fixture(params=SHARED_STORES)
async def nodes(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FrozenClock, hasher: PasswordHasher
) -> AsyncIterator[tuple[Node, Node]]:
    async with two_nodes(str(request.param), tmp_path, clock=clock, hasher=hasher) as pair:
        await pair[0].service.register(EMAIL, PASSWORD)
        yield pair


def now(clock: FrozenClock) -> float:
    return clock().timestamp()


async def get_tokens(node: Node, key: ProofKey, clock: FrozenClock) -> dict[str, Any]:
    form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
    proof = key.dpop("POST", TOKEN, iat=now(clock))
    response = await node.http.post("/auth/token", data=form, headers={"DPoP": proof})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def dpop_headers(token: str, proof: str) -> dict[str, str]:
    return {"Authorization": f"DPoP {token}", "DPoP": proof}


def assert_refused(response: httpx.Response, error: str) -> None:
    """401 with the DPoP challenge naming ``error`` (RFC 9449 section 7.1)."""
    assert response.status_code == 401, response.text
    assert response.json()["error"] == error
    assert response.headers["www-authenticate"] == f'DPoP error="{error}", {ALGS}'


async def test_DPOP_07_the_token_endpoint_binds_tokens_to_the_proof_key(
    nodes: tuple[Node, Node], clock: FrozenClock
) -> None:
    a, b = nodes
    key = ProofKey()
    body = await get_tokens(a, key, clock)
    assert body["token_type"] == "DPoP"
    claims = await b.service.tokens.access.verify(body["access_token"])
    assert claims.jkt == key.jkt
    family = await b.service.tokens.refresh.find_family(body["refresh_token"])
    assert family is not None
    assert family.jkt == key.jkt


async def test_DPOP_06_a_bound_token_with_a_proof_by_its_key_works_on_the_other_node(
    nodes: tuple[Node, Node], clock: FrozenClock
) -> None:
    a, b = nodes
    key = ProofKey()
    token = (await get_tokens(a, key, clock))["access_token"]
    proof = key.dpop("GET", ME, access_token=token, iat=now(clock))
    response = await b.http.get("/auth/me", headers=dpop_headers(token, proof))
    assert response.status_code == 200, response.text
    assert response.json()["email"] == EMAIL
    sessions = await b.http.get(
        "/auth/sessions",
        headers=dpop_headers(
            token, key.dpop("GET", f"{ORIGIN}/auth/sessions", access_token=token, iat=now(clock))
        ),
    )
    [device] = sessions.json()
    assert device["bound"] is True
    assert device["current"] is True


async def test_DPOP_06_a_stolen_access_token_without_the_key_is_refused(
    nodes: tuple[Node, Node], clock: FrozenClock
) -> None:
    a, b = nodes
    token = (await get_tokens(a, ProofKey(), clock))["access_token"]
    thief = ProofKey()
    proof = thief.dpop("GET", ME, access_token=token, iat=now(clock))
    assert_refused(
        await b.http.get("/auth/me", headers=dpop_headers(token, proof)), "invalid_token"
    )


async def test_DPOP_06_a_bound_token_sent_as_bearer_is_refused_with_the_dpop_challenge(
    nodes: tuple[Node, Node], clock: FrozenClock
) -> None:
    a, b = nodes
    token = (await get_tokens(a, ProofKey(), clock))["access_token"]
    response = await b.http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert_refused(response, "invalid_token")


async def test_DPOP_04_a_proof_replayed_to_the_other_node_is_refused(
    nodes: tuple[Node, Node], clock: FrozenClock
) -> None:
    a, b = nodes
    key = ProofKey()
    token = (await get_tokens(a, key, clock))["access_token"]
    headers = dpop_headers(token, key.dpop("GET", ME, access_token=token, iat=now(clock)))
    assert (await a.http.get("/auth/me", headers=headers)).status_code == 200
    assert_refused(await b.http.get("/auth/me", headers=headers), "invalid_dpop_proof")
    assert_refused(await a.http.get("/auth/me", headers=headers), "invalid_dpop_proof")


async def test_DPOP_02_a_proof_for_another_method_or_url_is_refused(
    nodes: tuple[Node, Node], clock: FrozenClock
) -> None:
    a, b = nodes
    key = ProofKey()
    token = (await get_tokens(a, key, clock))["access_token"]
    wrong_method = key.dpop("POST", ME, access_token=token, iat=now(clock))
    assert_refused(
        await b.http.get("/auth/me", headers=dpop_headers(token, wrong_method)),
        "invalid_dpop_proof",
    )
    wrong_url = key.dpop("GET", f"{ORIGIN}/auth/sessions", access_token=token, iat=now(clock))
    assert_refused(
        await b.http.get("/auth/me", headers=dpop_headers(token, wrong_url)), "invalid_dpop_proof"
    )
    # The Host header is not the origin: a proof for the URL the client saw through
    # another host name is not a proof for this server.
    other_host = key.dpop(
        "GET", "https://other.example/auth/me", access_token=token, iat=now(clock)
    )
    response = await b.http.get(
        "/auth/me",
        headers={**dpop_headers(token, other_host), "Host": "other.example"},
    )
    assert_refused(response, "invalid_dpop_proof")


async def test_DPOP_03_a_stale_proof_is_refused(
    nodes: tuple[Node, Node], clock: FrozenClock
) -> None:
    a, b = nodes
    key = ProofKey()
    token = (await get_tokens(a, key, clock))["access_token"]
    stale = key.dpop("GET", ME, access_token=token, iat=now(clock) - 120)
    assert_refused(
        await b.http.get("/auth/me", headers=dpop_headers(token, stale)), "invalid_dpop_proof"
    )


async def test_DPOP_06_an_ath_for_another_token_is_refused(
    nodes: tuple[Node, Node], clock: FrozenClock
) -> None:
    a, b = nodes
    key = ProofKey()
    token = (await get_tokens(a, key, clock))["access_token"]
    other = (await get_tokens(a, key, clock))["access_token"]
    proof = key.dpop("GET", ME, access_token=other, iat=now(clock))
    assert_refused(
        await b.http.get("/auth/me", headers=dpop_headers(token, proof)), "invalid_dpop_proof"
    )


async def test_DPOP_01_proofs_signed_with_none_or_hs256_are_refused(
    nodes: tuple[Node, Node], clock: FrozenClock
) -> None:
    a, b = nodes
    key = ProofKey()
    token = (await get_tokens(a, key, clock))["access_token"]
    claims = {
        "htm": "GET",
        "htu": ME,
        "iat": int(now(clock)),
        "jti": b64(b"x" * 16),
        "ath": access_token_hash(token),
    }
    header = {"typ": "dpop+jwt", "jwk": key.public}
    for proof in (
        jws({**header, "alg": "none"}, claims),
        forge({**header, "alg": "HS256"}, claims, b"k" * 32),
    ):
        assert_refused(
            await b.http.get("/auth/me", headers=dpop_headers(token, proof)), "invalid_dpop_proof"
        )
    form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
    none_at_token = jws({**header, "alg": "none"}, {**claims, "htm": "POST", "htu": TOKEN})
    response = await a.http.post("/auth/token", data=form, headers={"DPoP": none_at_token})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_dpop_proof"


async def test_DPOP_07_a_refresh_token_used_with_another_key_is_refused_and_spends_nothing(
    nodes: tuple[Node, Node], clock: FrozenClock
) -> None:
    a, b = nodes
    key, thief = ProofKey(), ProofKey()
    refresh = (await get_tokens(a, key, clock))["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    stolen = await b.http.post(
        "/auth/token", data=form, headers={"DPoP": thief.dpop("POST", TOKEN, iat=now(clock))}
    )
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_dpop_proof"
    bare = await b.http.post("/auth/token", data=form)
    assert bare.status_code == 400
    assert bare.json()["error"] == "invalid_dpop_proof"
    owner = await a.http.post(
        "/auth/token", data=form, headers={"DPoP": key.dpop("POST", TOKEN, iat=now(clock))}
    )
    assert owner.status_code == 200, owner.text
    assert owner.json()["token_type"] == "DPoP"


async def test_DPOP_11_an_unbound_family_refreshed_with_a_proof_becomes_bound(
    nodes: tuple[Node, Node], clock: FrozenClock
) -> None:
    a, b = nodes
    key, thief = ProofKey(), ProofKey()
    form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
    bearer = await a.http.post("/auth/token", data=form)  # no proof: an unbound family
    assert bearer.json()["token_type"] == "Bearer"
    refresh = {"grant_type": "refresh_token", "refresh_token": bearer.json()["refresh_token"]}
    bound = await b.http.post(
        "/auth/token", data=refresh, headers={"DPoP": key.dpop("POST", TOKEN, iat=now(clock))}
    )
    assert bound.status_code == 200, bound.text
    assert bound.json()["token_type"] == "DPoP"
    form = {"grant_type": "refresh_token", "refresh_token": bound.json()["refresh_token"]}
    for headers in ({}, {"DPoP": thief.dpop("POST", TOKEN, iat=now(clock))}):
        refused = await a.http.post("/auth/token", data=form, headers=headers)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_dpop_proof"
    owner = await a.http.post(
        "/auth/token", data=form, headers={"DPoP": key.dpop("POST", TOKEN, iat=now(clock))}
    )
    assert owner.status_code == 200, owner.text
    assert owner.json()["token_type"] == "DPoP"


async def test_DPOP_05_nonces_are_asked_for_and_shared_by_every_node(
    nodes: tuple[Node, Node], clock: FrozenClock
) -> None:
    a, b = nodes
    for node in nodes:  # the same nodes, now asking for nonces
        node.service.dpop.policy = DPoPPolicy(nonce=True)
    key = ProofKey()
    form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
    asked = await a.http.post(
        "/auth/token", data=form, headers={"DPoP": key.dpop("POST", TOKEN, iat=now(clock))}
    )
    assert asked.status_code == 400
    assert asked.json()["error"] == "use_dpop_nonce"
    nonce = asked.headers["dpop-nonce"]
    granted = await b.http.post(
        "/auth/token",
        data=form,
        headers={"DPoP": key.dpop("POST", TOKEN, iat=now(clock), nonce=nonce)},
    )
    assert granted.status_code == 200, granted.text
    token = granted.json()["access_token"]
    no_nonce = key.dpop("GET", ME, access_token=token, iat=now(clock))
    refused = await b.http.get("/auth/me", headers=dpop_headers(token, no_nonce))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == f'DPoP error="use_dpop_nonce", {ALGS}'
    assert refused.headers["dpop-nonce"] == nonce
    with_nonce = key.dpop("GET", ME, access_token=token, iat=now(clock), nonce=nonce)
    assert (
        await a.http.get("/auth/me", headers=dpop_headers(token, with_nonce))
    ).status_code == 200
