"""What an operator reads from ``velvetrope serve``: timestamped or JSON logs with the
security events' fields, the access log, and Prometheus metrics on their own port,
added up across workers (checklist OPS-L1, OPS-M1)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.server import WORKERS_STARTUP_TIMEOUT, Servers, login, register
from tests.support.services import PASSWORD

pytestmark = pytest.mark.e2e

FAST = {"VELVETROPE_PASSWORD_HASH_PROFILE": "owasp-minimum"}
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def test_OPS_L1_json_logs_are_one_object_per_line_with_event_fields_and_access_lines(
    servers: Servers, database: Path
) -> None:
    env = {**FAST, "VELVETROPE_LOG_FORMAT": "json", "VELVETROPE_ACCESS_LOG": "true"}
    server = servers.start(database, env=env)
    with server.client() as http:
        register(http, "ann@example.com")
        refused = http.post("/auth/login", json={"email": "ann@example.com", "password": "nope"})
        assert refused.status_code == 401
    server.stop()
    entries = [json.loads(line) for line in server.stderr.splitlines() if line.strip()]
    assert entries, server.describe()
    for entry in entries:
        assert ISO_UTC.fullmatch(entry["time"]), entry
        assert {"level", "logger", "message"} <= entry.keys()
    [failed] = [e for e in entries if e.get("event") == "login_failed"]
    assert failed["logger"] == "velvetrope.events"
    assert failed["ip"] == "127.0.0.1"
    assert failed["email"]
    assert "ann@example.com" not in json.dumps(failed)  # a handle only
    assert failed["reason"] == "invalid_credentials"
    access = [e for e in entries if e["logger"] == "uvicorn.access"]
    assert {"method": "POST", "path": "/auth/login", "status": 401}.items() <= access[-1].items()


def test_OPS_L1_text_logs_start_with_a_utc_timestamp_and_have_no_access_log_by_default(
    servers: Servers, database: Path
) -> None:
    server = servers.start(database, env=FAST)
    with server.client() as http:
        assert http.get("/health").status_code == 200
    server.stop()
    lines = [line for line in server.stderr.splitlines() if line.strip()]
    assert lines, server.describe()
    for line in lines:
        assert ISO_UTC.match(line), line
    assert "GET /health" not in server.stderr


def _scrape(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_OPS_M1_metrics_on_their_own_port_add_up_every_worker(
    servers: Servers, database: Path
) -> None:
    port = free_port()
    public = free_port()
    while public == port:  # a port just probed and closed can be handed out again
        public = free_port()
    env = {**FAST, "VELVETROPE_METRICS_PORT": str(port), "VELVETROPE_REFRESH_GRACE": "0"}
    server = servers.start(
        database, "--workers", "2", env=env, timeout=WORKERS_STARTUP_TIMEOUT, port=public
    )
    assert f"http://127.0.0.1:{port}/metrics" in server.expect_line("metrics on")
    checks = 40
    with server.client() as http:
        assert http.get("/metrics").status_code == 404  # never on the public port
        register(http, "ann@example.com")
        login(http, "ann@example.com")
        bad = http.post("/auth/login", json={"email": "ann@example.com", "password": "nope"})
        assert bad.status_code == 401
        tokens = http.post(
            "/auth/token",
            data={"grant_type": "password", "username": "ann@example.com", "password": PASSWORD},
        ).json()
        rotated = http.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert rotated.status_code == 200
        reused = http.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert reused.status_code == 400
        second = http.post(
            "/auth/token",
            data={"grant_type": "password", "username": "ann@example.com", "password": PASSWORD},
        ).json()
        bearer = {"Authorization": f"Bearer {second['access_token']}"}
        for _ in range(checks):  # new connections: the checks land on both workers
            assert httpx.get(f"{server.base_url}/auth/me", headers=bearer).status_code == 200
        revoked = http.post("/auth/revoke", data={"token": second["refresh_token"]})
        assert revoked.status_code == 200
    deadline = time.monotonic() + 15
    while True:  # each worker moves its check timings into the histogram once a second
        values = _scrape(port)
        if values.get("velvetrope_auth_check_seconds_count", 0) >= checks:
            break
        assert time.monotonic() < deadline, values
        time.sleep(0.2)
    assert values['velvetrope_sign_ins_total{way="session"}'] == 1
    assert values['velvetrope_sign_ins_total{way="token"}'] == 2
    assert values['velvetrope_sign_in_failures_total{reason="invalid_credentials"}'] == 1
    assert values["velvetrope_refresh_reuse_total"] == 1
    assert values['velvetrope_revocations_total{kind="refresh_family"}'] >= 1
    assert values['velvetrope_auth_check_seconds_bucket{le="+Inf"}'] >= checks
    assert values["velvetrope_auth_check_seconds_sum"] > 0
