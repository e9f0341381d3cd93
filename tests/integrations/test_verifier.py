"""The services' side: the verifier, its JWKS cache, and the ASGI / FastAPI / WSGI guards."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.ports import free_port
from tests.support.services import ORIGIN, PASSWORD, app_settings
from velvetrope import AuthService, FrozenClock, Velvetrope, create_app
from velvetrope.core.gateway import Gateway
from velvetrope.core.principal import Principal
from velvetrope.errors import InvalidToken, StoreUnavailable
from velvetrope.integrations import (
    CLAIMS_KEY,
    InternalAuth,
    InternalAuthMiddleware,
    InternalClaims,
    InternalTokenVerifier,
    WSGIInternalAuth,
)

JWKS_PATH = "/auth/gateway/jwks.json"


@pytest.fixture
async def vr(service: AuthService) -> Velvetrope:
    made = Velvetrope(app_settings(gateway_audiences="orders,billing"), service=service)
    assert made.context.gateway is not None
    await made.context.gateway.start()
    return made


@pytest.fixture
def gateway(vr: Velvetrope) -> Gateway:
    assert vr.context.gateway is not None
    return vr.context.gateway


@pytest.fixture
async def principal(service: AuthService) -> Principal:
    await service.register("ann@example.com", PASSWORD)
    signed = await service.login("ann@example.com", PASSWORD)
    return await service.authenticate(signed.session.secret)


def verifier_for(vr: Velvetrope, clock: FrozenClock, **options: Any) -> InternalTokenVerifier:
    return InternalTokenVerifier(
        jwks_url=ORIGIN + JWKS_PATH,
        issuer=ORIGIN,
        audience="orders",
        now=clock,
        transport=httpx.ASGITransport(app=create_app(velvetrope=vr)),
        **options,
    )


async def test_HYB_06_a_live_internal_token_for_this_service_passes(
    vr: Velvetrope, gateway: Gateway, principal: Principal, clock: FrozenClock
) -> None:
    token = (await gateway.token_for(principal, "orders")).token
    claims = await verifier_for(vr, clock).verify(token)
    assert claims.sub == principal.user_id
    assert claims.aud == "orders"


async def test_HYB_06_browser_tokens_other_audiences_and_expired_tokens_are_refused(
    vr: Velvetrope,
    gateway: Gateway,
    principal: Principal,
    clock: FrozenClock,
    service: AuthService,
) -> None:
    verifier = verifier_for(vr, clock)
    access = (await service.tokens.issue_for(principal.user_id)).access_token
    with pytest.raises(InvalidToken):
        await verifier.verify(access)
    with pytest.raises(InvalidToken) as other:
        await verifier.verify((await gateway.token_for(principal, "billing")).token)
    assert other.value.reason == "wrong aud"
    token = (await gateway.token_for(principal, "orders")).token
    clock.advance(timedelta(seconds=66))  # 60 s of life and 5 s of leeway
    with pytest.raises(InvalidToken) as expired:
        await verifier.verify(token)
    assert expired.value.reason == "expired"


async def test_HYB_06_a_forged_token_is_refused(
    vr: Velvetrope, gateway: Gateway, principal: Principal, clock: FrozenClock
) -> None:
    token = (await gateway.token_for(principal, "orders")).token
    header, _, signature = token.split(".")
    other = (await gateway.token_for(principal, "billing")).token.split(".")[1]
    with pytest.raises(InvalidToken):
        await verifier_for(vr, clock).verify(f"{header}.{other}.{signature}")


async def test_HYB_13_an_unknown_kid_refetches_once_per_interval(
    vr: Velvetrope, gateway: Gateway, principal: Principal, clock: FrozenClock
) -> None:
    verifier = verifier_for(vr, clock, refetch_every=timedelta(seconds=10))
    await verifier.verify((await gateway.token_for(principal, "orders")).token)
    assert verifier.fetches == 1
    clock.advance(timedelta(seconds=11))
    await gateway.tokens.keys.rotate()  # a new key the verifier has not seen
    gateway.cache.clear()
    rotated = (await gateway.token_for(principal, "orders")).token
    assert (await verifier.verify(rotated)).sub == principal.user_id
    assert verifier.fetches == 2
    forged_kid = _with_kid(rotated, "k" * 43)
    for _ in range(50):  # a flood of made-up key ids costs at most one fetch
        with pytest.raises(InvalidToken):
            await verifier.verify(forged_kid)
    assert verifier.fetches == 2


def _with_kid(token: str, kid: str) -> str:
    import base64  # noqa: PLC0415

    header, payload, signature = token.split(".")
    raw = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    raw["kid"] = kid
    encoded = base64.urlsafe_b64encode(json.dumps(raw).encode()).rstrip(b"=").decode()
    return f"{encoded}.{payload}.{signature}"


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    """``app`` on a real loopback port, in this event loop."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="error")
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
            await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await task


async def test_HYB_13_an_unreachable_jwks_keeps_known_keys_for_a_bounded_time_then_fails_closed(
    vr: Velvetrope, gateway: Gateway, principal: Principal, clock: FrozenClock
) -> None:
    token = (await gateway.token_for(principal, "orders")).token
    async with served(create_app(velvetrope=vr)) as (url, server):
        verifier = InternalTokenVerifier(
            jwks_url=url + JWKS_PATH,
            issuer=ORIGIN,
            audience="orders",
            now=clock,
            leeway=timedelta(minutes=1),
            refresh_every=timedelta(seconds=10),
            keep_keys_for=timedelta(seconds=30),
        )
        await verifier.verify(token)
        server.should_exit = True
    clock.advance(timedelta(seconds=20))  # due for a refresh; the JWKS does not answer
    assert (await verifier.verify(token)).sub == principal.user_id
    clock.advance(timedelta(seconds=11))  # 31 s since the last good fetch
    with pytest.raises(StoreUnavailable):
        await verifier.verify(token)


async def test_HYB_13_no_jwks_ever_fetched_fails_closed(clock: FrozenClock) -> None:
    verifier = InternalTokenVerifier(
        jwks_url=f"http://127.0.0.1:{free_port()}{JWKS_PATH}",
        issuer=ORIGIN,
        audience="orders",
        now=clock,
    )
    with pytest.raises(StoreUnavailable):
        await verifier.verify("a.b.c")


# --- the guards --------------------------------------------------------------------------


def _service_app() -> Starlette:
    async def whoami(request: Request) -> JSONResponse:
        claims: InternalClaims = request.scope["state"][CLAIMS_KEY]
        return JSONResponse({"sub": claims.sub})

    return Starlette(routes=[Route("/whoami", whoami), Route("/health", whoami)])


async def test_HYB_12_the_asgi_middleware_admits_only_internal_tokens(
    vr: Velvetrope, gateway: Gateway, principal: Principal, clock: FrozenClock
) -> None:
    app = InternalAuthMiddleware(_service_app(), verifier_for(vr, clock))
    token = (await gateway.token_for(principal, "orders")).token
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        ok = await http.get("/whoami", headers={"Authorization": f"Bearer {token}"})
        assert ok.json() == {"sub": principal.user_id}
        missing = await http.get("/whoami")
        assert missing.status_code == 401
        assert missing.json()["error"] == "not_authenticated"
        with_cookie = await http.get(
            "/whoami",
            headers={
                "Authorization": f"Bearer {token}",
                "Cookie": "__Host-velvetrope-session=stolen",
            },
        )
        assert with_cookie.status_code == 401
        twice = await http.get("/whoami", headers=[("Authorization", f"Bearer {token}")] * 2)
        assert twice.status_code == 401
        bad = await http.get("/whoami", headers={"Authorization": "Bearer not-a-jwt"})
        assert bad.status_code == 401
        assert "invalid_token" in bad.headers["www-authenticate"]


async def test_the_fastapi_dependency_gives_the_claims(
    vr: Velvetrope, gateway: Gateway, principal: Principal, clock: FrozenClock
) -> None:
    auth = InternalAuth(verifier_for(vr, clock))
    app = FastAPI()
    InternalAuth.install(app)

    @app.get("/orders")
    async def orders(claims: InternalClaims = Depends(auth)) -> dict[str, str]:  # noqa: B008
        return {"sub": claims.sub, "sid": claims.sid}

    token = (await gateway.token_for(principal, "orders")).token
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        ok = await http.get("/orders", headers={"Authorization": f"Bearer {token}"})
        assert ok.json() == {"sub": principal.user_id, "sid": principal.handle}
        refused = await http.get("/orders")
        assert refused.status_code == 401
        assert set(refused.json()) == {"error", "detail"}


def _wsgi_service(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    claims = environ["velvetrope.internal"]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"sub": claims.sub}).encode()]


async def test_the_wsgi_middleware_admits_only_internal_tokens(
    gateway: Gateway, principal: Principal, clock: FrozenClock
) -> None:
    document = json.dumps(gateway.jwks()).encode()

    def jwks_server(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [document]

    verifier = InternalTokenVerifier(
        jwks_url=ORIGIN + JWKS_PATH,
        issuer=ORIGIN,
        audience="orders",
        now=clock,
        sync_transport=httpx.WSGITransport(app=jwks_server),
    )
    app = WSGIInternalAuth(_wsgi_service, verifier)
    token = (await gateway.token_for(principal, "orders")).token
    other = (await gateway.token_for(principal, "billing")).token
    answers = await asyncio.to_thread(_wsgi_requests, app, [token, other, None])
    assert answers == [(200, {"sub": principal.user_id}), (401, None), (401, None)]


def _wsgi_requests(app: WSGIInternalAuth, tokens: list[str | None]) -> list[tuple[int, object]]:
    found: list[tuple[int, object]] = []
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://s") as http:
        for token in tokens:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = http.get("/", headers=headers)
            found.append((response.status_code, response.json() if response.is_success else None))
    return found


async def test_HYB_06_a_remembered_token_still_expires_and_still_dies_with_its_session(
    vr: Velvetrope, gateway: Gateway, principal: Principal, clock: FrozenClock
) -> None:
    revoked: set[str] = set()
    verifier = verifier_for(vr, clock, revoked=lambda claims: claims.sid in revoked)
    token = (await gateway.token_for(principal, "orders")).token
    await verifier.verify(token)
    assert (await verifier.verify(token)).sub == principal.user_id  # remembered
    revoked.add(principal.handle)
    with pytest.raises(InvalidToken):
        await verifier.verify(token)
    revoked.clear()
    clock.advance(timedelta(seconds=66))
    with pytest.raises(InvalidToken) as expired:
        await verifier.verify(token)
    assert expired.value.reason == "expired"


# --- configuration and diagnosis ----------------------------------------------------------

LOGGER = "velvetrope.integrations"


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"jwks_url": ""}, "jwks_url"),
        ({"jwks_url": "127.0.0.1:8001/auth/gateway/jwks.json"}, "jwks_url"),
        ({"jwks_url": "ftp://auth.internal/jwks.json"}, "jwks_url"),
        ({"jwks_url": "https:///auth/gateway/jwks.json"}, "jwks_url"),
        ({"jwks_url": "https://auth.internal/jwks.json\n"}, "jwks_url"),
        ({"jwks_url": "http://[::1/jwks.json"}, "jwks_url"),
        ({"issuer": ""}, "issuer"),
        ({"issuer": "https://edge.example "}, "issuer"),
        ({"audience": ""}, "audience"),
        ({"audience": " orders"}, "audience"),
        ({"leeway": timedelta(seconds=-1)}, "leeway"),
        ({"leeway": timedelta(hours=1)}, "leeway"),
        ({"refresh_every": timedelta(0)}, "refresh_every"),
        ({"refetch_every": timedelta(0)}, "refetch_every"),
        ({"refetch_every": timedelta(minutes=6)}, "refetch_every"),
        ({"keep_keys_for": timedelta(minutes=1)}, "keep_keys_for"),
        ({"fetch_timeout": 0.0}, "fetch_timeout"),
        ({"fetch_timeout": float("nan")}, "fetch_timeout"),
        ({"cache_size": -1}, "cache_size"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(changes: dict[str, Any], named: str) -> None:
    arguments: dict[str, Any] = {
        "jwks_url": "https://auth.internal/auth/gateway/jwks.json",
        "issuer": ORIGIN,
        "audience": "orders",
    }
    InternalTokenVerifier(**arguments)  # the baseline is accepted
    with pytest.raises(ValueError, match=f"^{named} "):
        InternalTokenVerifier(**(arguments | changes))


async def test_HYB_13_a_jwks_nobody_answers_is_logged_with_the_url_and_the_cause(
    clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{free_port()}{JWKS_PATH}"
    verifier = InternalTokenVerifier(jwks_url=url, issuer=ORIGIN, audience="orders", now=clock)
    with caplog.at_level(logging.WARNING, logger=LOGGER), pytest.raises(StoreUnavailable):
        await verifier.verify("a.b.c")
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert record.levelno == logging.WARNING
    assert url in record.getMessage()
    assert "ConnectError" in record.getMessage()
    assert "no keys are known" in record.getMessage()
    assert verifier.last_error is not None
    assert verifier.last_error.startswith("ConnectError")
    assert verifier.last_error_at == clock()
    assert verifier.fetched_at is None


async def test_HYB_13_a_password_in_the_jwks_url_never_reaches_the_log_or_an_error(
    clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    url = f"http://svc:s3cret-pw@127.0.0.1:{port}{JWKS_PATH}"
    verifier = InternalTokenVerifier(jwks_url=url, issuer=ORIGIN, audience="orders", now=clock)
    with caplog.at_level(logging.WARNING, logger=LOGGER), pytest.raises(StoreUnavailable):
        await verifier.verify("a.b.c")
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert f"http://***@127.0.0.1:{port}{JWKS_PATH}" in record.getMessage()
    assert "s3cret-pw" not in record.getMessage()
    assert "s3cret-pw" not in (verifier.last_error or "")
    with pytest.raises(ValueError, match=r"^jwks_url ") as refused:
        InternalTokenVerifier(
            jwks_url="ftp://svc:s3cret-pw@[::1]:21/jwks.json", issuer=ORIGIN, audience="orders"
        )
    assert "ftp://***@[::1]:21/jwks.json" in str(refused.value)
    assert "s3cret-pw" not in str(refused.value)


def _jwks_answering(status: int, body: bytes) -> Starlette:
    async def jwks(request: Request) -> Response:
        return Response(body, status_code=status, media_type="application/json")

    return Starlette(routes=[Route(JWKS_PATH, jwks)])


@pytest.mark.parametrize(
    ("status", "body", "cause"),
    [
        (503, b"{}", "HTTP 503"),
        (404, b"not found", "HTTP 404"),
        (200, b'{"keys": "none"}', "not a JWKS document"),
        (200, b"<html>", "JSONDecodeError"),
    ],
)
async def test_HYB_13_a_jwks_answer_that_is_not_a_jwks_is_logged_with_its_cause(
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: bytes,
    cause: str,
) -> None:
    async with served(_jwks_answering(status, body)) as (url, _):
        verifier = InternalTokenVerifier(
            jwks_url=url + JWKS_PATH, issuer=ORIGIN, audience="orders", now=clock
        )
        with caplog.at_level(logging.WARNING, logger=LOGGER), pytest.raises(StoreUnavailable):
            await verifier.verify("a.b.c")
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert url + JWKS_PATH in record.getMessage()
    assert cause in record.getMessage()
    assert verifier.last_error is not None
    assert cause in verifier.last_error


async def test_HYB_13_an_outage_after_a_good_fetch_warns_until_when_known_keys_count(
    vr: Velvetrope,
    gateway: Gateway,
    principal: Principal,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = (await gateway.token_for(principal, "orders")).token
    async with served(create_app(velvetrope=vr)) as (url, server):
        verifier = InternalTokenVerifier(
            jwks_url=url + JWKS_PATH,
            issuer=ORIGIN,
            audience="orders",
            now=clock,
            leeway=timedelta(minutes=1),
            refresh_every=timedelta(seconds=10),
            keep_keys_for=timedelta(seconds=30),
        )
        await verifier.verify(token)
        fetched = verifier.fetched_at
        server.should_exit = True
    assert verifier.last_error is None
    clock.advance(timedelta(seconds=20))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert (await verifier.verify(token)).sub == principal.user_id
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert fetched is not None
    deadline = (fetched + timedelta(seconds=30)).isoformat(timespec="seconds")
    assert f"used until {deadline}" in record.getMessage()
    assert url + JWKS_PATH in record.getMessage()
    assert verifier.fetched_at == fetched  # the failure did not count as a fetch


async def test_HYB_13_verify_sync_logs_a_failed_fetch_too(
    clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{free_port()}{JWKS_PATH}"
    verifier = InternalTokenVerifier(jwks_url=url, issuer=ORIGIN, audience="orders", now=clock)
    with caplog.at_level(logging.WARNING, logger=LOGGER), pytest.raises(StoreUnavailable):
        await asyncio.to_thread(verifier.verify_sync, "a.b.c")
    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert url in record.getMessage()
    assert verifier.last_error is not None
    assert verifier.last_error.startswith("ConnectError")


# --- the example service's start-up -----------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "orders_service.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("orders_service_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"ORDERS_ISSUER": ORIGIN}, "ORDERS_JWKS_URL is required"),
        ({"ORDERS_JWKS_URL": "  ", "ORDERS_ISSUER": ORIGIN}, "ORDERS_JWKS_URL is required"),
        ({"ORDERS_JWKS_URL": "http://127.0.0.1:8001" + JWKS_PATH}, "ORDERS_ISSUER is required"),
        (
            {"ORDERS_JWKS_URL": "127.0.0.1:8001" + JWKS_PATH, "ORDERS_ISSUER": ORIGIN},
            "ORDERS_JWKS_URL: jwks_url must be",
        ),
        (
            {
                "ORDERS_JWKS_URL": "http://127.0.0.1:8001" + JWKS_PATH,
                "ORDERS_ISSUER": ORIGIN,
                "ORDERS_AUDIENCE": "",
            },
            "ORDERS_AUDIENCE: audience must be",
        ),
    ],
)
def test_the_example_service_names_a_missing_or_bad_variable_at_start_up(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], named: str
) -> None:
    for name in [n for n in os.environ if n.startswith("ORDERS_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        _example().build_app()
    assert named in str(stopped.value.code)


def test_the_example_service_starts_with_its_required_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith("ORDERS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ORDERS_JWKS_URL", "http://127.0.0.1:8001" + JWKS_PATH)
    monkeypatch.setenv("ORDERS_ISSUER", ORIGIN)
    assert _example().build_app().title.startswith("orders")
