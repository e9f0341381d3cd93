"""DPoP in your own app and under each policy: AuthMiddleware and Depends take it
through the backend list; ``off`` ignores proofs, ``require`` refuses bearer tokens;
CORS lets a browser client send ``DPoP`` and read ``DPoP-Nonce``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.proofs import ProofKey, forge, jws
from tests.support.services import ORIGIN, PASSWORD, app_settings, asgi_client, started_service
from velvetrope import (
    AuthMiddleware,
    AuthService,
    FrozenClock,
    PasswordHasher,
    Principal,
    Velvetrope,
    create_app,
    system_clock,
)
from velvetrope.client import DPoPAuth
from velvetrope.core.binding.dpop import DPoPMode, DPoPPolicy, access_token_hash
from velvetrope.stores import MemoryStores
from velvetrope.web.dependencies import PRINCIPAL_KEY
from velvetrope.web.errors import install_error_handlers

EMAIL = "ann@example.com"
ALGS = 'algs="ES256 EdDSA RS256 PS256"'


async def service_with(mode: DPoPMode, clock: FrozenClock, hasher: PasswordHasher) -> AuthService:
    service = await started_service(
        MemoryStores(), clock=clock, hasher=hasher, dpop_policy=DPoPPolicy(mode=mode)
    )
    await service.register(EMAIL, PASSWORD)
    return service


async def tokens(
    http: httpx.AsyncClient, key: ProofKey | None, clock: FrozenClock
) -> httpx.Response:
    form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
    headers = {}
    if key is not None:
        headers["DPoP"] = key.dpop("POST", f"{ORIGIN}/auth/token", iat=clock().timestamp())
    return await http.post("/auth/token", data=form, headers=headers)


def bound_headers(key: ProofKey, token: str, url: str, clock: FrozenClock) -> dict[str, str]:
    proof = key.dpop("GET", url, access_token=token, iat=clock().timestamp())
    return {"Authorization": f"DPoP {token}", "DPoP": proof}


@pytest.fixture
async def library_app(
    clock: FrozenClock, hasher: PasswordHasher
) -> AsyncIterator[httpx.AsyncClient]:
    """A FastAPI app of your own: the router, a Depends route, and AuthMiddleware on /api."""
    vr = Velvetrope(app_settings(), service=await service_with("allow", clock, hasher))
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(vr.router)

    @app.get("/orders")
    async def orders(who: Principal = Depends(vr.principal)) -> dict[str, str]:  # noqa: B008
        return {"user": who.user_id, "method": who.method}

    async def api_me(request: Request) -> JSONResponse:
        principal: Principal = request.state._state[PRINCIPAL_KEY]
        return JSONResponse({"method": principal.method})

    inner = Starlette(routes=[Route("/me", api_me)])
    app.mount("/api", AuthMiddleware(inner, velvetrope=vr, protect=["/"]))
    async with asgi_client(app) as http:
        yield http
    await vr.service.aclose()


async def test_DPOP_09_depends_and_the_middleware_take_dpop(
    library_app: httpx.AsyncClient, clock: FrozenClock
) -> None:
    key = ProofKey()
    token = (await tokens(library_app, key, clock)).json()["access_token"]
    orders = await library_app.get(
        "/orders", headers=bound_headers(key, token, f"{ORIGIN}/orders", clock)
    )
    assert orders.status_code == 200, orders.text
    assert orders.json()["method"] == "dpop"
    api = await library_app.get(
        "/api/me", headers=bound_headers(key, token, f"{ORIGIN}/api/me", clock)
    )
    assert api.status_code == 200, api.text
    assert api.json() == {"method": "dpop"}
    bearer = await library_app.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 401
    assert bearer.headers["www-authenticate"] == f'DPoP error="invalid_token", {ALGS}'


@pytest.mark.parametrize(
    ("mode", "token_type", "challenge"),
    [
        ("off", "Bearer", 'Bearer realm="velvetrope"'),
        ("allow", "DPoP", 'Bearer realm="velvetrope"'),
        ("require", "DPoP", f'Bearer realm="velvetrope", DPoP {ALGS}'),
    ],
)
async def test_DPOP_09_each_policy(
    mode: DPoPMode, token_type: str, challenge: str, clock: FrozenClock, hasher: PasswordHasher
) -> None:
    vr = Velvetrope(app_settings(dpop=mode), service=await service_with(mode, clock, hasher))
    async with asgi_client(create_app(velvetrope=vr)) as http:
        key = ProofKey()
        assert (await tokens(http, key, clock)).json()["token_type"] == token_type
        bare = await tokens(http, None, clock)
        nobody = await http.get("/auth/me")
        assert nobody.headers["www-authenticate"] == challenge
        if mode == "require":
            assert bare.status_code == 400
            assert bare.json()["error"] == "invalid_dpop_proof"
            return
        token = bare.json()["access_token"]
        assert bare.json()["token_type"] == "Bearer"
        me = await http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
    await vr.service.aclose()


async def test_DPOP_09_under_require_an_unbound_bearer_token_is_refused(
    clock: FrozenClock, hasher: PasswordHasher
) -> None:
    service = await service_with("require", clock, hasher)
    pair = await service.token_login(EMAIL, PASSWORD)  # minted without a proof
    vr = Velvetrope(app_settings(dpop="require"), service=service)
    async with asgi_client(create_app(velvetrope=vr)) as http:
        response = await http.get(
            "/auth/me", headers={"Authorization": f"Bearer {pair.access_token}"}
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f'DPoP error="invalid_token", {ALGS}'
    await service.aclose()


async def test_DPOP_10_cors_lets_a_browser_client_send_proofs_and_read_nonces(
    clock: FrozenClock, hasher: PasswordHasher
) -> None:
    spa = "https://app.example.com"
    settings = app_settings(cors_origins=spa)
    vr = Velvetrope(settings, service=await service_with("allow", clock, hasher))
    async with asgi_client(create_app(velvetrope=vr)) as http:
        preflight = await http.options(
            "/auth/me",
            headers={
                "Origin": spa,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization, dpop",
            },
        )
        assert preflight.status_code == 200
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "dpop" in allowed
        assert "authorization" in allowed
        answer = await http.get("/auth/me", headers={"Origin": spa})
        exposed = answer.headers["access-control-expose-headers"].lower()
        assert "dpop-nonce" in exposed
        assert "www-authenticate" in exposed
    await vr.service.aclose()


def test_DPOP_09_require_with_jwt_cookies_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="DPOP=require cannot be combined"):
        app_settings(dpop="require", browser_credentials="jwt-cookie")


async def test_DPOP_01_malformed_dpop_requests_get_clear_errors(
    library_app: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """Each failed check gets its own fixed sentence (DPOP-12), never the proof's text."""
    key = ProofKey()
    token = (await tokens(library_app, key, clock)).json()["access_token"]
    url, now = f"{ORIGIN}/orders", clock().timestamp()
    malformed = await library_app.get(
        "/orders", headers={"Authorization": "DPoP not a token!", "DPoP": "x"}
    )
    assert malformed.status_code == 401
    assert malformed.json() == {
        "error": "invalid_token",
        "detail": "The access token is not valid.",
    }
    claims = {"htm": "GET", "htu": url, "iat": int(now), "ath": access_token_hash(token)}
    good = key.dpop("GET", url, access_token=token, iat=now)
    swapped = ".".join([*good.split(".")[:2], ProofKey().dpop("GET", url).split(".")[2]])
    evil = "https://attacker.example/evil-marker"
    header = {"typ": "dpop+jwt", "jwk": key.public}
    replayed = key.dpop("GET", url, access_token=token, iat=now)
    assert (await library_app.get("/orders", headers=proved(token, replayed))).status_code == 200
    cases: dict[str, tuple[str | None, str]] = {
        "no proof": (None, "Send exactly one DPoP header."),
        "garbage": ("garbage", "The DPoP proof is malformed"),
        "wrong htm": (key.dpop("POST", url, access_token=token, iat=now), "htm is not this"),
        "wrong htu": (
            key.dpop("GET", f"{ORIGIN}/elsewhere", access_token=token, iat=now),
            "htu is not this request's URL",
        ),
        "stale iat": (key.dpop("GET", url, access_token=token, iat=now - 120), "iat is too old"),
        "future iat": (
            key.dpop("GET", url, access_token=token, iat=now + 120),
            "iat is in the future",
        ),
        "iat not a number": (
            key.sign({**claims, "iat": "1", "jti": "n" * 22}),
            "iat must be a number",
        ),
        "replayed jti": (replayed, "already used"),
        "bad signature": (swapped, "signature does not verify"),
        "alg none": (jws({**header, "alg": "none"}, claims, b"\x01" * 64), "alg is not allowed"),
        "alg HS256": (forge({**header, "alg": "HS256"}, claims, b"k" * 32), "alg is not allowed"),
        "wrong typ": (key.sign({**claims, "jti": "t" * 22}, typ="jwt"), "typ header must be"),
        "missing ath": (key.dpop("GET", url, iat=now), "has no ath"),
        "ath mismatch": (
            key.dpop("GET", url, access_token="another token", iat=now),
            "ath is not the hash",
        ),
        "private jwk": (
            jws({**header, "alg": "ES256", "jwk": key.private}, claims, b"\x01" * 64),
            "holds private key material",
        ),
        "key by reference": (
            jws({**header, "alg": "ES256", "jku": evil}, claims, b"\x01" * 64),
            "header may hold only alg, typ and jwk",
        ),
    }
    said: dict[str, str] = {}
    for case, (proof, expected) in cases.items():
        response = await library_app.get("/orders", headers=proved(token, proof))
        assert response.status_code == 401, (case, response.text)
        body = response.json()
        assert body["error"] == "invalid_dpop_proof", case
        assert expected in body["detail"], (case, body)
        assert response.headers["www-authenticate"].startswith('DPoP error="invalid_dpop_proof"')
        assert "evil-marker" not in response.text
        said[case] = body["detail"]
    assert said["alg none"] == said["alg HS256"]  # one check: the allowlist of algs
    assert len(set(said.values())) == len(said) - 1  # every other check says which it is
    two = [
        ("Authorization", f"DPoP {token}"),
        ("DPoP", key.dpop("GET", url, access_token=token, iat=now)),
        ("DPoP", key.dpop("GET", url, access_token=token, iat=now)),
    ]
    response = await library_app.get("/orders", headers=two)
    assert response.json() == {"error": "invalid_dpop_proof", "detail": said["no proof"]}
    form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
    twice = await library_app.post(
        "/auth/token", data=form, headers=[("DPoP", "a.b.c"), ("DPoP", "a.b.c")]
    )
    assert twice.status_code == 400
    assert twice.json()["error"] == "invalid_dpop_proof"
    assert twice.json()["error_description"] == "Send exactly one DPoP header."
    at_token = {
        "wrong htu": key.dpop("POST", f"{ORIGIN}/auth/other", iat=now),
        "stale iat": key.dpop("POST", f"{ORIGIN}/auth/token", iat=now - 120),
        "garbage": "garbage",
    }
    for case, proof in at_token.items():
        refused = await library_app.post("/auth/token", data=form, headers={"DPoP": proof})
        assert refused.status_code == 400, refused.text
        body = refused.json()
        assert body["error"] == "invalid_dpop_proof"
        assert body["detail"] == body["error_description"] == said[case], case


def proved(token: str, proof: str | None) -> dict[str, str]:
    """``Authorization: DPoP`` with ``token``, and ``proof`` as its ``DPoP`` header."""
    headers = {"Authorization": f"DPoP {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return headers


async def test_DPOP_11_under_require_an_unbound_refresh_token_needs_a_proof(
    clock: FrozenClock, hasher: PasswordHasher
) -> None:
    service = await service_with("require", clock, hasher)
    pair = await service.token_login(EMAIL, PASSWORD)  # opened without a proof
    vr = Velvetrope(app_settings(dpop="require"), service=service)
    form = {"grant_type": "refresh_token", "refresh_token": pair.refresh_token}
    key = ProofKey()
    async with asgi_client(create_app(velvetrope=vr)) as http:
        bare = await http.post("/auth/token", data=form)
        assert bare.status_code == 400
        assert bare.json()["error"] == "invalid_dpop_proof"
        assert bare.json()["error_description"] == (
            "This server requires DPoP: send a DPoP proof header."
        )
        proof = key.dpop("POST", f"{ORIGIN}/auth/token", iat=clock().timestamp())
        bound = await http.post("/auth/token", data=form, headers={"DPoP": proof})
        assert bound.status_code == 200, bound.text
        assert bound.json()["token_type"] == "DPoP"
    family = await service.family(pair.family.id)
    assert family is not None
    assert family.jkt == key.jkt
    await service.aclose()


async def test_DPOP_07_the_client_helper_hashes_the_token_it_sends(hasher: PasswordHasher) -> None:
    """DPoPAuth in-process (async): its own token, then a token the caller put in the
    request itself; each proof's ``ath`` is the hash of the token it travels with."""
    service = await started_service(MemoryStores(), clock=system_clock, hasher=hasher)
    await service.register(EMAIL, PASSWORD)
    vr = Velvetrope(app_settings(), service=service)
    auth = DPoPAuth()
    transport = httpx.ASGITransport(app=create_app(velvetrope=vr))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN, auth=auth) as http:
        form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
        assert (await http.post("/auth/token", data=form)).json()["token_type"] == "DPoP"
        first = auth.access_token
        assert (await http.get("/auth/me")).status_code == 200
        await http.post("/auth/token", data=form)  # a second sign-in: new tokens, same key
        assert auth.access_token != first
        mine = await http.get("/auth/me", headers={"Authorization": f"DPoP {first}"})
        assert mine.status_code == 200
        assert mine.request.headers["authorization"] == f"DPoP {first}"
    await service.aclose()
