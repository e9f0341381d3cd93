"""Token callers at the edge check (HYB-14): ``Authorization: DPoP`` with a proof for the
original request, or ``Bearer`` as the DPoP policy allows, in process over HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.support.proofs import ProofKey
from tests.support.services import ORIGIN, PASSWORD, app_settings, asgi_client, started_service
from velvetrope import AuthService, FrozenClock, PasswordHasher, Velvetrope, create_app
from velvetrope.core.binding.dpop import DPoPPolicy
from velvetrope.core.gateway import INTERNAL_TYP, Gateway, InternalClaims, validate_internal_claims
from velvetrope.core.tokens import codec
from velvetrope.stores import Stores

EMAIL = "ann@example.com"
AUDIENCE = "orders"
PATH = "/api/orders/whoami"
ALGS = 'algs="ES256 EdDSA RS256 PS256"'


class Edge:
    """The edge check as the proxy calls it, and a DPoP client's key and tokens."""

    def __init__(self, http: httpx.AsyncClient, vr: Velvetrope, clock: FrozenClock) -> None:
        self.http = http
        self.vr = vr
        self.clock = clock
        self.key = ProofKey()
        self.tokens: dict[str, Any] = {}

    @property
    def gateway(self) -> Gateway:
        assert self.vr.context.gateway is not None
        return self.vr.context.gateway

    @property
    def access(self) -> str:
        token: str = self.tokens["access_token"]
        return token

    async def sign_in(self) -> None:
        form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
        headers = {"DPoP": self.proof("POST", f"{ORIGIN}/auth/token", token=None)}
        response = await self.http.post("/auth/token", data=form, headers=headers)
        assert response.status_code == 200, response.text
        self.tokens = response.json()

    def proof(self, htm: str, htu: str, *, token: str | None = "") -> str:
        access = self.access if token == "" else token
        return self.key.dpop(htm, htu, access_token=access, iat=self.clock().timestamp())

    async def check(
        self,
        *,
        method: str = "GET",
        uri: str | None = f"{PATH}?page=2",
        proof: str | None = None,
        scheme: str = "DPoP",
        **extra: str,
    ) -> httpx.Response:
        """``GET /auth/gateway`` for an original ``method`` and ``uri``, with the token."""
        headers = {
            "X-Original-Method": method,
            "X-Velvetrope-Audience": AUDIENCE,
            "Authorization": f"{scheme} {self.access}",
            **extra,
        }
        if uri is not None:
            headers["X-Original-URI"] = uri
        if scheme == "DPoP":
            headers["DPoP"] = proof or self.proof(method, ORIGIN + PATH)
        return await self.http.get("/auth/gateway", headers=headers)

    async def internal(self, response: httpx.Response) -> InternalClaims:
        assert response.status_code == 200, response.text
        jwks = (await self.http.get("/auth/gateway/jwks.json")).json()
        keys = {
            k["kid"]: (codec.jwk_from_json(json.dumps(k), k["alg"]), k["alg"]) for k in jwks["keys"]
        }
        decoded = codec.decode_compact(
            response.headers["X-Velvetrope-Token"], keys.get, typ=INTERNAL_TYP
        )
        return validate_internal_claims(
            decoded.claims, issuer=ORIGIN, audience=AUDIENCE, now=self.clock(), leeway=timedelta(0)
        )


async def open_edge(service: AuthService, clock: FrozenClock, **settings: str) -> Velvetrope:
    vr = Velvetrope(app_settings(gateway_audiences="orders,billing", **settings), service=service)
    assert vr.context.gateway is not None
    await vr.context.gateway.start()
    await service.register(EMAIL, PASSWORD)
    return vr


@pytest.fixture
async def edge(service: AuthService, clock: FrozenClock) -> AsyncIterator[Edge]:
    vr = await open_edge(service, clock)
    async with asgi_client(create_app(velvetrope=vr)) as http:
        made = Edge(http, vr, clock)
        await made.sign_in()
        yield made


def _payload(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified (to compare the ids it names)."""
    part = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def assert_refused(response: httpx.Response, error: str, challenge: str) -> None:
    """401 with the code and the DPoP challenge, no token, nothing to keep."""
    assert response.status_code == 401, response.text
    assert response.json()["error"] == error
    assert response.headers["X-Velvetrope-Error"] == error
    assert response.headers["www-authenticate"] == f'DPoP error="{challenge}", {ALGS}'
    assert "X-Velvetrope-Token" not in response.headers
    assert response.headers["cache-control"] == "no-store"


async def test_HYB_14_a_dpop_caller_gets_a_token_keyed_by_its_family_and_capped_by_its_token(
    edge: Edge,
) -> None:
    claims = await edge.internal(await edge.check())
    access = _payload(edge.access)
    assert claims.sub == access["sub"]
    assert claims.sid == access["sid"]  # the refresh family's handle
    assert claims.expires_at.timestamp() <= access["exp"]
    # Another proof for the same family and audience: the kept token, no new signature.
    again = await edge.internal(await edge.check())
    assert again.jti == claims.jti
    assert edge.gateway.tokens.minted == 1


async def test_HYB_14_the_proof_must_name_the_original_request(edge: Edge) -> None:
    proof = edge.proof("GET", ORIGIN + PATH)
    assert (await edge.check(proof=proof)).status_code == 200
    assert_refused(await edge.check(proof=proof), "invalid_dpop_proof", "invalid_dpop_proof")
    for htm, htu in [
        ("GET", f"{ORIGIN}/auth/gateway"),  # the check's own URL
        ("GET", f"{ORIGIN}/api/orders/other"),
        ("GET", f"https://evil.example{PATH}"),
        ("POST", ORIGIN + PATH),
    ]:
        refused = await edge.check(proof=edge.proof(htm, htu))
        assert_refused(refused, "invalid_dpop_proof", "invalid_dpop_proof")
    # An unsafe original method, with a proof for it: no CSRF check (not ambient).
    post = await edge.check(method="POST", proof=edge.proof("POST", ORIGIN + PATH))
    assert post.status_code == 200, post.text


@pytest.mark.parametrize(
    "uris",
    [{}, {"X-Forwarded-Uri": "/api/orders/other"}, {"X-Original-URI": "not a path"}],
    ids=["none", "disagreeing", "malformed"],
)
async def test_HYB_14_without_a_usable_original_uri_a_dpop_caller_is_refused(
    edge: Edge, uris: dict[str, str]
) -> None:
    headers = dict(uris)
    if "X-Forwarded-Uri" in headers:
        headers["X-Original-URI"] = PATH
    original = headers.pop("X-Original-URI", None)
    refused = await edge.check(uri=original, **headers)
    assert_refused(refused, "gateway_uri_missing", "invalid_dpop_proof")
    assert "X-Original-URI" in refused.json()["detail"]


async def test_HYB_14_a_bound_token_sent_as_bearer_or_stolen_is_refused(edge: Edge) -> None:
    assert_refused(await edge.check(scheme="Bearer"), "invalid_token", "invalid_token")
    thief = ProofKey()
    stolen = thief.dpop(
        "GET", ORIGIN + PATH, access_token=edge.access, iat=edge.clock().timestamp()
    )
    assert_refused(await edge.check(proof=stolen), "invalid_token", "invalid_token")


async def test_HYB_14_a_present_token_decides_even_with_a_live_session_cookie(
    edge: Edge,
) -> None:
    login = await edge.http.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert login.status_code == 200
    session_only = {"X-Original-Method": "GET", "X-Velvetrope-Audience": AUDIENCE}
    assert (await edge.http.get("/auth/gateway", headers=session_only)).status_code == 200
    forged = {**session_only, "Authorization": "Bearer forged.by.client"}
    refused = await edge.http.get("/auth/gateway", headers=forged)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_token"


@pytest.mark.parametrize(("mode", "status"), [("allow", 200), ("require", 401)])
async def test_HYB_14_a_plain_bearer_token_follows_the_dpop_policy(
    stores: Stores, clock: FrozenClock, hasher: PasswordHasher, mode: str, status: int
) -> None:
    service = await started_service(
        stores,
        clock=clock,
        hasher=hasher,
        dpop_policy=DPoPPolicy(mode=mode),  # type: ignore[arg-type]
    )
    vr = await open_edge(service, clock, dpop=mode)
    async with asgi_client(create_app(velvetrope=vr)) as http:
        edge = Edge(http, vr, clock)
        # An unbound token (under require: one issued before require was switched on).
        pair = await service.token_login(EMAIL, PASSWORD)
        edge.tokens = {"access_token": pair.access_token, "refresh_token": pair.refresh_token}
        answer = await edge.check(scheme="Bearer")
        assert answer.status_code == status, answer.text
        if status == 200:
            claims = await edge.internal(answer)
            assert claims.sid == _payload(edge.access)["sid"]
        else:
            assert answer.headers["www-authenticate"].startswith("DPoP ")


async def test_HYB_14_a_revoked_family_is_refused_and_its_tokens_evicted(
    edge: Edge, service: AuthService
) -> None:
    await edge.internal(await edge.check())
    assert len(edge.gateway.cache) == 1
    revoked = await edge.http.post("/auth/revoke", data={"token": edge.tokens["refresh_token"]})
    assert revoked.status_code == 200
    assert len(edge.gateway.cache) == 0
    assert_refused(await edge.check(), "invalid_token", "invalid_token")
    assert edge.gateway.tokens.minted == 1


@pytest.mark.parametrize("how", ["everywhere", "password"])
async def test_HYB_14_a_user_wide_revocation_evicts_the_token_callers_mints(
    edge: Edge, service: AuthService, how: str
) -> None:
    await edge.internal(await edge.check())
    assert len(edge.gateway.cache) == 1
    user = _payload(edge.access)["sub"]
    if how == "everywhere":
        await service.sign_out_everywhere(user)
    else:
        signed = await service.login(EMAIL, PASSWORD)
        principal = await service.authenticate(signed.session.secret)
        await service.change_password(
            principal, None, PASSWORD, "another correct horse battery staple"
        )
    assert len(edge.gateway.cache) == 0
    edge.clock.advance(timedelta(seconds=1))  # past the cut-off (whole seconds)
    assert_refused(await edge.check(), "invalid_token", "invalid_token")


async def test_HYB_14_a_family_revoked_on_another_node_is_refused_on_the_next_edge_request(
    edge: Edge, stores: Stores, clock: FrozenClock, hasher: PasswordHasher
) -> None:
    """Node B revokes the family (its push may not have reached node A yet): node A's
    edge reads the revocation feed before it trusts the token, so the very next request
    is refused and nothing is minted for it."""
    await edge.internal(await edge.check())
    other = await started_service(stores, clock=clock, hasher=hasher)  # the stores are shared
    await other.revoke_token(edge.tokens["refresh_token"])
    edge.gateway.cache.clear()  # as if A had not heard of the revocation at all
    assert_refused(await edge.check(), "invalid_token", "invalid_token")
    assert edge.gateway.tokens.minted == 1
