"""Library mode: ``Velvetrope.install(app)`` in an app of your own.

One call mounts the router, the error mapping (so auth failures in *your* routes get
the documented status and body) and the lifespan; the origin must be configured; the
lifecycle starts, stops and starts again (one client per test).
"""

import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import Request

from tests.support.ports import free_port
from tests.support.postgres import require_postgres, temp_database
from tests.support.redis import REDIS_URL, delete_prefix, new_prefix, require_redis
from tests.support.services import PASSWORD
from tests.support.smtp import SmtpServer, link_in
from velvetrope import ConfigurationError, Principal, Settings, StoreUnavailable, Velvetrope
from velvetrope.core.tokens import codec
from velvetrope.testing import ORIGIN, app_client, new_user, settings_for_tests, sign_in
from velvetrope.web.extension import ORIGIN_REQUIRED


def own_app(auth: Velvetrope) -> FastAPI:
    """An app of one's own: two routes behind velvetrope, one that raises an AuthError."""
    app = FastAPI()
    auth.install(app)
    who = Annotated[Principal, Depends(auth.principal)]

    @app.get("/orders")
    async def orders(principal: who) -> dict[str, str]:
        return {"user": principal.user_id, "email": principal.email}

    @app.post("/orders", status_code=201)
    async def place(principal: who) -> dict[str, str]:
        return {"placed_by": principal.user_id}

    @app.get("/people/{email}")
    async def person(email: str) -> dict[str, str]:
        user = await auth.service.find_user(email)  # raises UserNotFound
        return {"id": user.id}

    return app


async def test_install_maps_every_auth_failure_in_your_own_routes() -> None:
    app = own_app(Velvetrope(settings_for_tests()))
    async with app_client(app) as client:
        none = await client.get("/orders")
        assert none.status_code == 401
        assert none.json() == {"error": "not_authenticated", "detail": "You are not signed in."}
        assert none.headers["www-authenticate"].startswith("Bearer")
        bad = await client.get("/orders", headers={"Authorization": "Bearer not.a.token"})
        assert (bad.status_code, bad.json()["error"]) == (401, "invalid_token")
        missing = await client.get("/people/nobody@example.com")
        assert (missing.status_code, missing.json()["error"]) == (404, "user_not_found")
        ann = await new_user(client)
        taken = await client.post("/auth/register", json={"email": ann.email, "password": PASSWORD})
        assert (taken.status_code, taken.json()["error"]) == (409, "email_taken")
        wrong = await client.post("/auth/login", json={"email": ann.email, "password": "x" * 20})
        assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_credentials")
        await sign_in(client, ann)
        assert (await client.get("/orders")).json() == {"user": ann.id, "email": ann.email}
        forged = await client.post("/orders", headers={"X-CSRF-Token": "forged"})
        assert (forged.status_code, forged.json()["error"]) == (403, "csrf_failed")
        assert (await client.post("/orders")).status_code == 201  # with the real token


async def test_install_keeps_the_apps_own_error_handlers() -> None:
    app = FastAPI()

    @app.exception_handler(HTTPException)
    async def mine(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"mine": True}, status_code=418)

    Velvetrope(settings_for_tests()).install(app)
    async with app_client(app) as client:
        assert (await client.get("/nowhere")).json() == {"mine": True}
        assert (await client.get("/auth/me")).json()["error"] == "not_authenticated"


def test_the_origin_is_configured_or_refused_in_one_sentence(no_env: None) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Velvetrope(Settings(_env_file=None, database_url="memory://"))
    assert refused.value.detail == ORIGIN_REQUIRED
    assert "VELVETROPE_PUBLIC_ORIGIN" in str(refused.value)
    assert "\n" not in ORIGIN_REQUIRED
    assert ORIGIN_REQUIRED.replace("e.g.", "eg").count(". ") == 0  # one sentence


def test_OPS_S5_a_misspelt_variable_is_warned_about_in_your_own_app(
    no_env: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("VELVETROPE_DATABASE_URL", "memory://")
    monkeypatch.setenv("VELVETROPE_PUBLIC_ORIGIN", ORIGIN)
    monkeypatch.setenv("VELVETROPE_SESION_IDLE_TIMEOUT", "5m")
    with caplog.at_level(logging.WARNING, logger="velvetrope"):
        Velvetrope()
    assert (
        "VELVETROPE_SESION_IDLE_TIMEOUT (in the environment) is not a velvetrope setting; "
        "did you mean VELVETROPE_SESSION_IDLE_TIMEOUT?"
    ) in caplog.text


def test_OPS_S5_an_invalid_variable_is_one_sentence_in_your_own_app(
    no_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VELVETROPE_DATABASE_URL", "memory://")
    monkeypatch.setenv("VELVETROPE_PUBLIC_ORIGIN", ORIGIN)
    monkeypatch.setenv("VELVETROPE_SESSION_IDLE_TIMEOUT", "ten minutes")
    with pytest.raises(ConfigurationError) as refused:
        Velvetrope()
    assert "VELVETROPE_SESSION_IDLE_TIMEOUT" in refused.value.detail
    assert "\n" not in refused.value.detail
    assert refused.value.__cause__ is None
    assert refused.value.__suppress_context__


def test_OPS_S5_an_unreadable_dotenv_is_refused_in_your_own_app(
    no_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").mkdir()
    with pytest.raises(ConfigurationError, match=r"\.env is a folder"):
        Velvetrope()


async def test_OPS_S5_a_store_down_at_start_is_named_in_one_sentence() -> None:
    port = free_port()  # nothing listens there
    auth = Velvetrope(
        settings_for_tests(database_url="memory://", redis_url=f"redis://127.0.0.1:{port}/0")
    )
    with pytest.raises(StoreUnavailable) as refused:
        async with auth.lifespan():
            pass
    assert refused.value.detail.startswith(f"cannot reach Redis at redis://127.0.0.1:{port}/0: ")
    assert refused.value.__suppress_context__
    assert not auth.running


async def test_tokens_iss_and_aud_follow_the_configured_origin() -> None:
    origin = "https://shop.example.com"
    auth = Velvetrope(settings_for_tests(public_origin=origin))
    async with app_client(own_app(auth)) as client:
        ann = await new_user(client)
        response = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": ann.email, "password": PASSWORD},
        )
        claims = codec.loads_strict(codec._b64decode(response.json()["access_token"].split(".")[1]))
        assert claims["iss"] == claims["aud"] == origin


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings on each kind of store, the data kept between two starts."""
    kind = str(request.param)
    if kind == "postgres":
        require_postgres()
        with temp_database() as url:
            yield settings_for_tests(database_url=url)
        return
    if kind == "redis":
        require_redis()
        prefix = new_prefix()
        yield settings_for_tests(
            database_url=f"sqlite:///{tmp_path / 'vr.db'}",
            redis_url=REDIS_URL,
            redis_prefix=prefix,
        )
        import asyncio  # noqa: PLC0415 - a sync fixture cleaning up after an async store

        asyncio.run(delete_prefix(prefix))
        return
    yield settings_for_tests(
        database_url="memory://" if kind == "memory" else f"sqlite:///{tmp_path / 'vr.db'}"
    )


async def test_the_lifecycle_starts_stops_and_starts_again(store_settings: Settings) -> None:
    auth = Velvetrope(store_settings)
    app = own_app(auth)
    async with app_client(app) as client:
        ann = await new_user(client)
        await sign_in(client, ann)
        assert (await client.get("/orders")).status_code == 200
    async with app_client(app) as client:  # a second client, as the next test would make
        await sign_in(client, ann)
        assert (await client.get("/orders")).json()["user"] == ann.id
        assert (await client.get("/people/" + ann.email)).json() == {"id": ann.id}
    assert not auth.running


def test_a_second_testclient_in_one_process_works(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        # Starlette 1.x asks for httpx2 under its TestClient; users still write this.
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient  # noqa: PLC0415

    app = own_app(Velvetrope(settings_for_tests(database_url=f"sqlite:///{tmp_path / 'vr.db'}")))
    for attempt in range(2):
        with TestClient(app, base_url=ORIGIN) as client:
            assert client.get("/orders").status_code == 401
            email = f"ann{attempt}@example.com"
            body = {"email": email, "password": PASSWORD}
            assert client.post("/auth/register", json=body).status_code == 201
            assert (
                client.post("/auth/login", json=body, headers={"Origin": ORIGIN}).status_code == 200
            )
            assert client.get("/orders").json()["email"] == email  # the Secure cookie came back


async def test_lifespan_and_install_together_share_one_start() -> None:
    auth = Velvetrope(settings_for_tests())
    app = FastAPI(lifespan=auth.lifespan)
    auth.install(app)
    async with app_client(app) as client:
        assert auth.running
        assert (await client.get("/auth/me")).status_code == 401
    assert not auth.running


def test_installing_twice_is_refused() -> None:
    app = FastAPI()
    Velvetrope(settings_for_tests()).install(app)
    with pytest.raises(RuntimeError, match="installed in this app already"):
        Velvetrope(settings_for_tests()).install(app)


@pytest.mark.parametrize("pages", [True, False], ids=["pages", "api-only"])
async def test_LIB_07_the_mailed_links_open_pages_in_your_own_app(pages: bool) -> None:
    """With ``install(app, pages=True)`` the reset and verification links in real mail
    open working pages in your app; without, those paths are yours to serve (404 here)."""
    with SmtpServer() as smtp:
        auth = Velvetrope(
            settings_for_tests(smtp_url=f"smtp://127.0.0.1:{smtp.port}", mail_product="Acme Shop")
        )
        app = FastAPI()
        auth.install(app, pages=pages)
        async with app_client(app) as client:
            registered = await client.post(
                "/auth/register", json={"email": "ann@example.com", "password": PASSWORD}
            )
            assert registered.status_code == 201, registered.text
            forgot = await client.post("/auth/password/forgot", json={"email": "ann@example.com"})
            assert forgot.status_code == 202
            await auth.service.accounts.outbox.drain()
            verify = smtp.inbox.wait_for("ann@example.com", 1)
            reset = smtp.inbox.wait_for("ann@example.com", 2)
            assert verify["Subject"] == "Confirm your address for Acme Shop"
            assert reset["Subject"] == "Reset your Acme Shop password"
            assert verify["From"] == "Acme Shop <no-reply@testserver>"
            for message, path, says in (
                (verify, "/email/verify", "Confirm"),
                (reset, "/password/reset", "new password"),
            ):
                link = link_in(message, path)
                assert link.startswith(ORIGIN + path + "?token=")
                opened = await client.get(link.removeprefix(ORIGIN))
                if pages:
                    assert opened.status_code == 200, opened.text
                    assert says in opened.text
                    assert "/static/velvetrope.css" in opened.text
                    # the link's secret is in the URL: no referrer, whatever the app adds
                    assert opened.headers["referrer-policy"] == "no-referrer"
                    assert "default-src 'none'" in opened.headers["content-security-policy"]
                    assert opened.headers["x-frame-options"] == "DENY"
                    assert opened.headers["cache-control"] == "no-store"
                else:
                    assert opened.status_code == 404
            if pages:
                assert (await client.get("/static/velvetrope.css")).status_code == 200


def test_LIB_07_pages_need_the_static_path_free() -> None:
    app = FastAPI()
    app.mount("/static", FastAPI())
    with pytest.raises(RuntimeError, match="/static"):
        Velvetrope(settings_for_tests()).install(app, pages=True)
    assert getattr(app.state, "velvetrope", None) is None
