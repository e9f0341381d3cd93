"""MAIL-02 on the real process: without SMTP, a development server prints its mail, and
the link in the printed mail works; a non-loopback origin sends none."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.server import Servers, register
from tests.support.services import PASSWORD

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "a brand new passphrase from the console"


def test_MAIL_02_a_development_server_prints_the_mail_and_its_link_works(
    servers: Servers, database: Path
) -> None:
    server = servers.start(database, env={"VELVETROPE_LOG_LEVEL": "debug"})  # access log on
    with server.client() as http:
        register(http, "ann@example.com")
        answer = http.post("/auth/password/forgot", json={"email": "ann@example.com"})
        assert answer.status_code == 202, answer.text
        line = server.expect_line("/password/reset?token=", timeout=10)
        assert line.startswith(f"{server.base_url}/password/reset?token="), line
        token = re.findall(r"token=([A-Za-z0-9_-]{43})$", line.strip())[0]
        assert http.get(f"/password/reset?token={token}").status_code == 200
        body = {"token": token, "new_password": NEW_PASSWORD}
        assert http.post("/auth/password/reset", json=body).status_code == 204
        login = http.post(
            "/auth/login", json={"email": "ann@example.com", "password": NEW_PASSWORD}
        )
        assert login.status_code == 200
        old = http.post("/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
        assert old.status_code == 401
    server.stop()
    assert "Subject: Reset your velvetrope password" in server.stdout
    assert "To: ann@example.com" in server.stdout
    logged = server.stdout + server.stderr
    assert "GET /password/reset?token=[redacted]" in logged  # RESET-13: not in the access log
    assert logged.count(token) == 1  # the printed mail, nowhere else


def test_MAIL_02_a_production_origin_without_smtp_sends_nothing(
    servers: Servers, database: Path
) -> None:
    env = {"VELVETROPE_PUBLIC_ORIGIN": "https://auth.example.com"}
    server = servers.start(database, env=env)
    with server.client() as http:
        http.headers["Origin"] = "https://auth.example.com"
        register(http, "ann@example.com")
        answer = http.post("/auth/password/forgot", json={"email": "ann@example.com"})
        assert answer.status_code == 503
        assert answer.json()["error"] == "mail_unavailable"
    server.stop()
    assert "token=" not in server.stdout + server.stderr
