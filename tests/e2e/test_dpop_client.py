"""The shipped DPoP client (``velvetrope.client.DPoPAuth``) against ``velvetrope serve``,
over https (``--tls-cert``/``--tls-key``): tokens, calls, renewal, nonces."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import HTTP_TIMEOUT, ServerProcess, Servers, register
from tests.support.services import PASSWORD
from tests.support.tls import Certificates, make_certificates
from velvetrope.client import DPoPAuth

pytestmark = pytest.mark.e2e

EMAIL = "ann@example.com"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


def start_tls(servers: Servers, database: Path, certs: Certificates, **env: str) -> ServerProcess:
    server = servers.start(
        database,
        "--tls-cert",
        str(certs.cert),
        "--tls-key",
        str(certs.key),
        env={"VELVETROPE_PASSWORD_HASH_PROFILE": "owasp-minimum", **env},
    )
    assert server.base_url is not None
    assert server.base_url.startswith("https://127.0.0.1:")
    return server


@pytest.fixture
def client_for(certificates: Certificates) -> Iterator[object]:
    opened: list[httpx.Client] = []

    def make(server: ServerProcess, auth: httpx.Auth | None = None) -> httpx.Client:
        assert server.base_url is not None
        trust = ssl.create_default_context(cafile=str(certificates.ca))
        client = httpx.Client(
            base_url=server.base_url, verify=trust, timeout=HTTP_TIMEOUT, auth=auth
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def test_DPOP_07_the_client_gets_bound_tokens_and_calls_me_over_https(
    servers: Servers, database: Path, certificates: Certificates, client_for: object
) -> None:
    server = start_tls(
        servers,
        database,
        certificates,
        VELVETROPE_ACCESS_TOKEN_TTL="2",
        VELVETROPE_TOKEN_LEEWAY="0",
    )
    assert callable(client_for)
    with client_for(server) as plain:
        register(plain, EMAIL)
    auth = DPoPAuth()
    http = client_for(server, auth)
    granted = http.post(
        "/auth/token", data={"grant_type": "password", "username": EMAIL, "password": PASSWORD}
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["token_type"] == "DPoP"
    assert auth.access_token is not None
    me = http.get("/auth/me")
    assert me.status_code == 200, me.text
    assert me.json()["email"] == EMAIL
    [device] = http.get("/auth/sessions").json()
    assert device["bound"] is True
    # Stolen: the token alone, as a bearer token, is refused with the DPoP challenge.
    stolen = client_for(server).get(
        "/auth/me", headers={"Authorization": f"Bearer {auth.access_token}"}
    )
    assert stolen.status_code == 401
    assert stolen.headers["www-authenticate"].startswith('DPoP error="invalid_token"')
    first = auth.access_token
    time.sleep(2.1)  # the access token expires; the client renews it with its bound refresh token
    renewed = http.get("/auth/me")
    assert renewed.status_code == 200, renewed.text
    assert auth.access_token != first


def test_DPOP_05_the_client_follows_nonce_requests(
    servers: Servers, database: Path, certificates: Certificates, client_for: object
) -> None:
    server = start_tls(servers, database, certificates, VELVETROPE_DPOP_NONCE="true")
    assert callable(client_for)
    register(client_for(server), EMAIL)
    sent: list[str] = []
    http = client_for(server, DPoPAuth())
    http.event_hooks["request"].append(lambda request: sent.append(request.url.path))
    granted = http.post(
        "/auth/token", data={"grant_type": "password", "username": EMAIL, "password": PASSWORD}
    )
    assert granted.status_code == 200, granted.text
    assert sent == ["/auth/token", "/auth/token"]  # asked for a nonce once, then signed with it
    assert http.get("/auth/me").status_code == 200


def test_DBSC_10_serve_needs_both_tls_files(servers: Servers, certificates: Certificates) -> None:
    refused = servers.refused("--port", "0", "--tls-cert", str(certificates.cert))
    assert refused.returncode == 2
    assert "--tls-cert and --tls-key go together" in refused.stderr
