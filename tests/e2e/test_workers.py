"""``velvetrope serve --workers 2`` on SQLite: a revocation made through one worker is
refused by the other on its very next request (checklist OPS-W1), over 100 trials.

Each connection below is pinned to one worker: it is opened once, told never to
reconnect (``auto_open = 0``), and ``GET /ready`` on it names the worker that accepted
it. The two connections are to two different workers, so every trial provably signs
out through one process and asks the other.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import COOKIE, WORKERS_STARTUP_TIMEOUT, Servers
from tests.support.services import PASSWORD

pytestmark = pytest.mark.e2e

TRIALS = 100
EMAIL = "ann@example.com"
ENV = {"VELVETROPE_PASSWORD_HASH_PROFILE": "owasp-minimum"}


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Pinned:
    """One keep-alive connection that never reconnects: one worker answers all of it."""

    def __init__(self, base_url: str) -> None:
        parts = urllib.parse.urlsplit(base_url)
        assert parts.hostname is not None
        self.origin = base_url
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        self._conn.connect()
        self._conn.auto_open = 0  # a closed connection raises instead of reconnecting
        self.worker = self.request("GET", "/ready").json()["worker"]

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        json_body: Any = None,
    ) -> Answer:
        sent = dict(headers or {})
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = json.dumps(json_body)
            sent["Content-Type"] = "application/json"
        self._conn.request(method, path, body=body, headers=sent)
        response = self._conn.getresponse()
        return Answer(response.status, response.headers, response.read())

    def close(self) -> None:
        self._conn.close()


@pytest.fixture
def two_workers(servers: Servers, database: Path) -> Iterator[tuple[Pinned, Pinned]]:
    """A server with two workers, and one connection to each."""
    server = servers.start(database, "--workers", "2", env=ENV, timeout=WORKERS_STARTUP_TIMEOUT)
    assert server.base_url is not None
    assert "2 workers" in server.stdout
    opened: list[Pinned] = []
    try:
        first = Pinned(server.base_url)
        opened.append(first)
        for _ in range(200):  # the kernel hands each connection to one of the workers
            other = Pinned(server.base_url)
            opened.append(other)
            if other.worker != first.worker:
                yield first, other
                assert first.request("GET", "/ready").json()["worker"] == first.worker
                assert other.request("GET", "/ready").json()["worker"] == other.worker
                return
        pytest.fail(f"200 connections all went to worker {first.worker}\n{server.describe()}")
    finally:
        for conn in opened:
            conn.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _tokens(a: Pinned) -> dict[str, Any]:
    answer = a.request(
        "POST",
        "/auth/token",
        form={"grant_type": "password", "username": EMAIL, "password": PASSWORD},
    )
    assert answer.status == 200, answer.body
    tokens: dict[str, Any] = answer.json()
    return tokens


def _bearer_trial(a: Pinned, b: Pinned, kind: int) -> None:
    tokens = _tokens(a)
    access = tokens["access_token"]
    assert b.request("GET", "/auth/me", headers=_bearer(access)).status == 200  # cached on B
    if kind == 0:  # RFC 7009: the access token itself (its jti)
        done = a.request("POST", "/auth/revoke", form={"token": access})
    elif kind == 1:  # RFC 7009: the refresh token (the family)
        done = a.request("POST", "/auth/revoke", form={"token": tokens["refresh_token"]})
    else:  # sign-out with the bearer token
        done = a.request("POST", "/auth/logout", headers=_bearer(access))
    assert done.status in (200, 204), done.body
    refused = b.request("GET", "/auth/me", headers=_bearer(access))
    assert refused.status == 401, (kind, refused.body)


def _session_trial(a: Pinned, b: Pinned) -> None:
    signed_in = a.request(
        "POST",
        "/auth/login",
        json_body={"email": EMAIL, "password": PASSWORD},
        headers={"Origin": a.origin},
    )
    assert signed_in.status == 200, signed_in.body
    [cookie] = [
        v.split(";", 1)[0]
        for v in signed_in.headers.get_all("set-cookie") or []
        if v.startswith(COOKIE + "=")
    ]
    assert b.request("GET", "/auth/me", headers={"Cookie": cookie}).status == 200
    out = a.request(
        "POST",
        "/auth/logout",
        headers={
            "Cookie": cookie,
            "Origin": a.origin,
            "X-CSRF-Token": signed_in.json()["csrf_token"],
        },
    )
    assert out.status == 204, out.body
    assert b.request("GET", "/auth/me", headers={"Cookie": cookie}).status == 401


def test_OPS_W1_a_revocation_through_one_worker_is_refused_by_the_other_at_once(
    two_workers: tuple[Pinned, Pinned],
) -> None:
    """100 trials, alternating which worker revokes: three ways to revoke a bearer token
    (one access token, its refresh family, a sign-out) and a session sign-out."""
    first, second = two_workers
    created = first.request(
        "POST", "/auth/register", json_body={"email": EMAIL, "password": PASSWORD}
    )
    assert created.status == 201, created.body
    for trial in range(TRIALS):
        a, b = (first, second) if trial % 2 == 0 else (second, first)
        kind = trial % 4
        if kind == 3:
            _session_trial(a, b)
        else:
            _bearer_trial(a, b, kind)
