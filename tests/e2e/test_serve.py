"""``velvetrope serve`` as a real process: the documented flow over real HTTP, restarts,
cookie attributes on the wire, refusals of bad configuration, and hostile input."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.cookies import SetCookie
from tests.support.server import (
    COOKIE,
    STOP_TIMEOUT,
    ServerProcess,
    Servers,
    auth,
    child_env,
    login,
    register,
    session_cookie,
    velvetrope_command,
)
from tests.support.services import PASSWORD

pytestmark = pytest.mark.e2e

MEGABYTE = 1024 * 1024


def test_documented_flow_over_real_http_and_logged_out_cookie_is_401(
    servers: Servers, database: Path
) -> None:
    """Register, sign in (JSON), /auth/me, /auth/sessions, DELETE a device, log out.

    TERM-01: after logout the old session cookie is refused with 401.
    """
    server = servers.start(database)
    with server.client() as http:
        register(http, "ann@example.com")
        laptop = login(http, "ann@example.com", user_agent="laptop")
        phone = login(http, "ann@example.com", user_agent="phone")
        assert laptop != phone

        me = http.get("/auth/me", headers=auth(laptop))
        assert me.status_code == 200, me.text
        assert me.json()["email"] == "ann@example.com"
        laptop_handle = me.json()["session"]["id"]

        listed = http.get("/auth/sessions", headers=auth(laptop))
        assert listed.status_code == 200, listed.text
        devices = {d["user_agent"]: d for d in listed.json()}
        assert set(devices) == {"laptop", "phone"}
        assert devices["laptop"]["current"] is True
        assert devices["laptop"]["id"] == laptop_handle
        assert devices["phone"]["current"] is False
        assert devices["laptop"]["ip"] == "127.0.0.1"
        assert laptop not in listed.text
        assert phone not in listed.text

        ended = http.delete(f"/auth/sessions/{devices['phone']['id']}", headers=auth(laptop))
        assert ended.status_code == 204, ended.text
        assert http.get("/auth/me", headers=auth(phone)).status_code == 401
        remaining = http.get("/auth/sessions", headers=auth(laptop)).json()
        assert [d["id"] for d in remaining] == [laptop_handle]

        logout = http.post("/auth/logout", headers=auth(laptop))
        assert logout.status_code == 204
        assert session_cookie(logout).attributes["max-age"] == "0"

        after = http.get("/auth/me", headers=auth(laptop))
        assert after.status_code == 401
        assert "www-authenticate" in after.headers
        assert http.get("/auth/sessions", headers=auth(laptop)).status_code == 401


@pytest.mark.parametrize(
    "stop_signal", [signal.SIGKILL, signal.SIGTERM], ids=["crash-sigkill", "restart-sigterm"]
)
def test_a_crash_or_restart_loses_no_session_or_user(
    servers: Servers, database: Path, stop_signal: signal.Signals
) -> None:
    """The issue "A crash or restart loses no session or user": SQLite WAL keeps both."""
    first = servers.start(database)
    with first.client() as http:
        register(http, "ann@example.com")
        secret = login(http, "ann@example.com")
        before = http.get("/auth/me", headers=auth(secret)).json()
    returncode = first.stop(stop_signal)
    if stop_signal == signal.SIGKILL:
        assert returncode == -signal.SIGKILL, "the server must really have been killed"

    second = servers.start(database)
    with second.client() as http:
        me = http.get("/auth/me", headers=auth(secret))
        assert me.status_code == 200, me.text
        assert me.json()["id"] == before["id"]
        assert me.json()["session"]["id"] == before["session"]["id"]
        assert login(http, "ann@example.com")  # the account and its password hash survived


def test_sigterm_stops_the_server_promptly(servers: Servers, database: Path) -> None:
    server = servers.start(database)
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {STOP_TIMEOUT}s after SIGTERM\n{server.describe()}")
    server.finish()
    assert "Traceback" not in server.stderr


def test_session_cookie_attributes_on_the_wire(servers: Servers, database: Path) -> None:
    """COOK-01..06 over the real server: ``__Host-`` prefix, Secure, HttpOnly, SameSite=lax,
    Path=/, no Domain, Max-Age within the absolute lifetime; COOK-08: logout expires the
    cookie with the same name and attributes; COOK-09: no-store."""
    server = servers.start(database)
    with server.client() as http:
        register(http, "ann@example.com")
        response = http.post("/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
        assert response.status_code == 200, response.text
        assert len(response.headers.get_list("set-cookie")) == 1
        cookie = session_cookie(response)
        assert cookie.name == COOKIE
        assert cookie.name.startswith("__Host-")
        assert len(cookie.value) >= 32
        assert "secure" in cookie.attributes
        assert "httponly" in cookie.attributes
        assert cookie.attributes["samesite"].lower() == "lax"
        assert cookie.attributes["path"] == "/"
        assert "domain" not in cookie.attributes
        assert 0 < int(cookie.attributes["max-age"]) <= 12 * 3600
        assert response.headers["cache-control"] == "no-store"
        assert cookie.value not in response.text  # COOK-02: only ever in Set-Cookie

        csrf = {"X-CSRF-Token": response.json()["csrf_token"]}
        logout = http.post("/auth/logout", headers=auth(cookie.value) | csrf)
        assert logout.status_code == 204
        cleared = session_cookie(logout)
        assert cleared.value in {"", '""'}  # starlette writes an empty value as ""
        assert cleared.attributes["max-age"] == "0"
        assert {k: v for k, v in cleared.attributes.items() if k not in {"max-age", "expires"}} == {
            k: v for k, v in cookie.attributes.items() if k not in {"max-age", "expires"}
        }


def test_server_output_never_contains_session_ids_even_at_debug_level(
    servers: Servers, database: Path
) -> None:
    """SESS-14 on the real process: sign-in, requests, device sign-out and logout with
    access logging on (debug) print no session ID to stdout or stderr."""
    server = servers.start(database, env={"VELVETROPE_LOG_LEVEL": "debug"})
    with server.client() as http:
        register(http, "ann@example.com")
        first = login(http, "ann@example.com")
        second = login(http, "ann@example.com")
        [other] = [
            d for d in http.get("/auth/sessions", headers=auth(first)).json() if not d["current"]
        ]
        assert http.delete(f"/auth/sessions/{other['id']}", headers=auth(first)).status_code == 204
        assert http.get("/auth/me", headers=auth(second)).status_code == 401
        assert http.post("/auth/logout", headers=auth(first)).status_code == 204
        assert http.get("/auth/me", headers=auth(first)).status_code == 401
    server.stop()
    logged = server.stdout + server.stderr
    assert "GET /auth/me" in logged, "access logging was expected at debug level"
    assert "session_created" in logged  # security events are logged ...
    for secret in (first, second):
        assert secret not in logged  # ... without the session ID
        assert secret[:16] not in logged


@dataclass(frozen=True)
class BadConfig:
    """``velvetrope serve ARGS`` with ``env``; stderr must name every one of ``names``."""

    args: tuple[str, ...]
    env: dict[str, str]
    names: tuple[str, ...]
    exit_code: int | None = None  # None: any non-zero status


BAD_CONFIGURATIONS = [
    pytest.param(
        BadConfig(("--database", "{db}"), {"VELVETROPE_PORT": "abc"}, ("VELVETROPE_PORT",), 2),
        id="port-not-a-number",
    ),
    pytest.param(
        BadConfig(
            ("--host", "0.0.0.0", "--port", "0", "--database", "{db}"),  # noqa: S104
            {},
            ("VELVETROPE_PUBLIC_ORIGIN", "http://0.0.0.0"),
            2,
        ),
        id="OPS-01-plain-http-on-non-loopback-host",
    ),
    pytest.param(
        BadConfig(
            ("--port", "0", "--database", "{db}"),
            {"VELVETROPE_PUBLIC_ORIGIN": "ftp://auth.example.com"},
            ("VELVETROPE_PUBLIC_ORIGIN",),
            2,
        ),
        id="public-origin-not-http",
    ),
    pytest.param(
        BadConfig(
            ("--port", "0"),
            {"VELVETROPE_DATABASE_URL": "mysql://x"},
            ("VELVETROPE_DATABASE_URL", "mysql"),
            2,
        ),
        id="unsupported-database-scheme",
    ),
    pytest.param(
        BadConfig(("--port", "0", "--database", "/proc/nope/vr.db"), {}, ("/proc/nope/vr.db",)),
        id="database-in-unwritable-location",
    ),
    pytest.param(
        BadConfig(("--port", "0", "--database", "{garbage}"), {}, ("not-a-database.db",)),
        id="database-file-is-not-sqlite",
    ),
]


@pytest.mark.parametrize("bad", BAD_CONFIGURATIONS)
def test_bad_configuration_stops_the_start_with_one_sentence_and_no_traceback(
    servers: Servers, tmp_path: Path, bad: BadConfig
) -> None:
    """A bad setting never starts a half-configured server: non-zero exit, one ``error:``
    line on stderr naming the problem, no traceback, nothing created on disk. README: "A
    bad setting stops it with one sentence naming the variable, and exit status 2."
    """
    garbage = tmp_path / "not-a-database.db"
    garbage.write_bytes(b"this is not a SQLite database\x00\xff" * 100)
    before = sorted(tmp_path.iterdir())
    argv = [a.format(db=tmp_path / "vr.db", garbage=garbage) for a in bad.args]

    refusal = servers.refused(*argv, env=bad.env)

    assert "Traceback" not in refusal.stderr + refusal.stdout
    assert "listening" not in refusal.stdout
    lines = refusal.stderr.strip().splitlines()
    assert len(lines) == 1, refusal.stderr
    assert lines[0].startswith("error: "), refusal.stderr
    for name in bad.names:
        assert name in lines[0]
    assert refusal.returncode not in (0, None)
    if bad.exit_code is not None:
        assert refusal.returncode == bad.exit_code, refusal.stderr
    assert sorted(tmp_path.iterdir()) == before


def test_non_loopback_host_starts_when_the_public_origin_is_https(
    servers: Servers, database: Path
) -> None:
    """OPS-01 counterpart: the refusal above is about plain http, not about the bind address."""
    server = servers.start(
        database,
        "--host",
        "0.0.0.0",  # noqa: S104 - the point of the test
        env={"VELVETROPE_PUBLIC_ORIGIN": "https://auth.example.com"},
    )
    assert server.listening_host == "0.0.0.0"  # noqa: S104
    assert server.expect_line("public origin:").strip() == "public origin: https://auth.example.com"
    with server.client() as http:
        response = http.get("/health")
        assert response.status_code == 200
        assert "strict-transport-security" in response.headers


@pytest.fixture
def server(servers: Servers, database: Path) -> ServerProcess:
    """A started server."""
    return servers.start(database)


def _assert_still_serving(server: ServerProcess) -> None:
    """The process is alive and still does its job after the abuse."""
    assert server.process.poll() is None, f"the server died\n{server.describe()}"
    with server.client() as http:
        assert http.get("/health").status_code == 200
        assert http.get("/ready").status_code == 200
        register(http, "after@example.com")
        assert (
            http.get("/auth/me", headers=auth(login(http, "after@example.com"))).status_code == 200
        )


def _megabyte_chunks() -> Iterator[bytes]:
    chunk = b"A" * (64 * 1024)
    for _ in range(MEGABYTE // len(chunk)):
        yield chunk


def test_oversized_cookie_and_bodies_get_4xx_and_the_server_keeps_answering(
    server: ServerProcess,
) -> None:
    """OPS-03 over the wire: a 1 MB Cookie header and 1 MB bodies (declared length and
    chunked) are refused with a 4xx, never a 500 or a hang."""
    with server.client() as http:
        big_cookie = http.get("/auth/me", headers={"Cookie": f"{COOKIE}={'a' * MEGABYTE}"})
        assert 400 <= big_cookie.status_code < 500, big_cookie.text

        many_cookies = "; ".join(f"c{i}={'b' * 1000}" for i in range(1024))
        assert 400 <= http.get("/health", headers={"Cookie": many_cookies}).status_code < 500

        declared = http.post(
            "/auth/login",
            content=b"{" + b" " * MEGABYTE + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert 400 <= declared.status_code < 500, declared.text

        chunked = http.post(
            "/auth/register",
            content=_megabyte_chunks(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert "content-length" not in chunked.request.headers
        assert 400 <= chunked.status_code < 500, chunked.text
    _assert_still_serving(server)


GARBAGE_BODIES = [
    (b"\x00\xff\xfe garbage", "application/json"),
    (b"[" * 10_000, "application/json"),
    (b'"just a string"', "application/json"),
    (b'{"email": "\\ud800@example.com", "password": "\\u0000"}', "application/json"),
    (b"email=%FF%FE&password=x", "application/x-www-form-urlencoded"),
    (b"email=a&email=b&password=x", "application/x-www-form-urlencoded"),
    (b"<xml/>", "application/xml"),
    (b"", ""),
]


def test_garbage_bodies_get_4xx_and_the_server_keeps_answering(
    server: ServerProcess,
) -> None:
    with server.client() as http:
        for body, content_type in GARBAGE_BODIES:
            for path in ("/auth/register", "/auth/login"):
                response = http.post(path, content=body, headers={"Content-Type": content_type})
                assert 400 <= response.status_code < 500, (path, body[:40], response.text)
                assert response.json()["error"]
    _assert_still_serving(server)


def test_non_http_bytes_on_the_socket_get_400_or_a_close_and_the_server_keeps_answering(
    server: ServerProcess,
) -> None:
    """A TLS ClientHello (https spoken to the http port) and a truncated request."""
    assert server.base_url is not None
    parts = urlsplit(server.base_url)
    assert parts.hostname is not None
    assert parts.port is not None
    for noise in (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)),
        b"\r\n" * 10 + b"GET",
    ):
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
            sock.sendall(noise)
            sock.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert reply == b"" or reply.startswith(b"HTTP/1.1 4"), reply[:200]
    _assert_still_serving(server)


def test_cli_disable_and_revoke_end_sessions_on_the_running_server(
    servers: Servers, database: Path, tmp_path: Path
) -> None:
    """TERM-04: `velvetrope users disable` and `sessions revoke --all`, run as separate
    processes on the same SQLite file, end sessions the running server issued."""
    server = servers.start(database)
    with server.client() as http:
        register(http, "ann@example.com")
        register(http, "bob@example.com")
        ann = login(http, "ann@example.com")
        bob = login(http, "bob@example.com")

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                velvetrope_command(*args, "--database", str(database)),
                capture_output=True,
                text=True,
                timeout=60,
                env=child_env(),
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                check=False,
            )

        disabled = cli("users", "disable", "ann@example.com")
        assert disabled.returncode == 0, disabled.stderr
        assert "ended 1 session(s)" in disabled.stdout
        assert http.get("/auth/me", headers=auth(ann)).status_code == 401
        refused = http.post("/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
        assert refused.status_code == 403
        assert refused.json()["error"] == "account_disabled"
        assert http.get("/auth/me", headers=auth(bob)).status_code == 200

        revoked = cli("sessions", "revoke", "bob@example.com", "--all")
        assert revoked.returncode == 0, revoked.stderr
        assert "ended 1 session(s)" in revoked.stdout
        assert http.get("/auth/me", headers=auth(bob)).status_code == 401
        assert login(http, "bob@example.com")  # revoking sessions does not lock the account


def test_set_cookie_parser_reads_flags_and_values() -> None:
    """The helper the cookie test relies on (so a parser bug cannot hide a cookie bug)."""
    cookie = SetCookie.parse("__Host-x=abc=; HttpOnly; Max-Age=5; Path=/; SameSite=lax; Secure")
    assert cookie.name == "__Host-x"
    assert cookie.value == "abc="
    assert cookie.attributes == {
        "httponly": "",
        "max-age": "5",
        "path": "/",
        "samesite": "lax",
        "secure": "",
    }
