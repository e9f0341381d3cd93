"""The security log of a real ``velvetrope serve``: written in the background, kept on
shutdown, read by ``velvetrope events``."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.server import Servers, child_env, login, register, velvetrope_command
from tests.support.services import PASSWORD

pytestmark = pytest.mark.e2e


def events(database: Path, user: str) -> list[dict[str, object]]:
    result = subprocess.run(
        velvetrope_command("events", user, "--json", "--database", str(database)),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found: list[dict[str, object]] = json.loads(result.stdout)
    return found


def test_a_running_server_writes_sign_ins_and_failures_in_the_background(
    servers: Servers, database: Path
) -> None:
    server = servers.start(database)
    with server.client() as client:
        register(client, "ann@example.com")
        login(client, "ann@example.com", user_agent="e2e-browser")
        wrong = client.post(
            "/auth/login", json={"email": "ann@example.com", "password": PASSWORD + "!"}
        )
        assert wrong.status_code == 401
    found: list[dict[str, object]] = []
    for _ in range(50):  # the writer runs in the background: poll, bounded
        found = events(database, "ann@example.com")
        if {"login_succeeded", "login_failed"} <= {e["event"] for e in found}:
            break
        time.sleep(0.2)
    kinds = [e["event"] for e in found]
    assert {"login_succeeded", "login_failed", "user_registered"} <= set(kinds), found
    [sign_in] = [e for e in found if e["event"] == "login_succeeded"]
    assert sign_in["user_agent"] == "e2e-browser"
    assert sign_in["ip"] == "127.0.0.1"
