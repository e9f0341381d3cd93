"""Start-up failures are one sentence naming the cause (checklist OPS-S1..S5): a store
that cannot be reached, a port in use, an unreadable ``.env``, a misspelt variable, a
malformed duration; read-only commands never leave a database behind."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Cli, assert_one_line_error, plain
from tests.support.ports import free_port
from tests.support.server import Servers
from velvetrope.startup import unknown_variables


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path)
    yield started
    started.stop_all()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["users", "list"], id="users-list"),
        pytest.param(["users", "disable", "ann@example.com"], id="users-disable"),
        pytest.param(["sessions", "list", "ann@example.com"], id="sessions-list"),
        pytest.param(["keys", "list"], id="keys-list"),
    ],
)
def test_OPS_S3_commands_on_a_missing_database_create_nothing(
    cli: Cli, tmp_path: Path, args: list[str]
) -> None:
    assert_one_line_error(cli(*args), says="no velvetrope database at")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_OPS_S3_the_default_database_is_not_created_by_users_list_in_another_folder(
    cli: Cli, tmp_path: Path
) -> None:
    assert_one_line_error(cli("users", "list", database=None), says="velvetrope.db")
    assert not (tmp_path / "velvetrope.db").exists()


@pytest.mark.parametrize(
    ("make", "says"),
    [
        pytest.param(lambda p: p.mkdir(), "is a folder", id="folder"),
        pytest.param(
            lambda p: p.write_bytes(b"VELVETROPE_PORT=\xff\xfe\n"), "not UTF-8", id="not-utf8"
        ),
        pytest.param(lambda p: p.symlink_to(p.parent / "gone"), "does not exist", id="dangling"),
    ],
)
def test_OPS_S2_an_unreadable_dotenv_is_one_sentence(
    cli: Cli, tmp_path: Path, make: object, says: str
) -> None:
    assert callable(make)
    make(tmp_path / ".env")
    line = assert_one_line_error(cli("users", "list"), says=says, exit_code=2)
    assert ".env" in line


def test_OPS_S4_a_misspelt_variable_is_warned_about_with_the_nearest_name(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VELVETROPE_SESION_IDLE_TIMEOUT", "60")
    cli.ok("migrate")
    result = cli("users", "list")
    assert result.exit_code == 0
    assert (
        "warning: VELVETROPE_SESION_IDLE_TIMEOUT (in the environment) is not a velvetrope "
        "setting; did you mean VELVETROPE_SESSION_IDLE_TIMEOUT?"
    ) in plain(result.stderr)


def test_OPS_S4_unknown_names_in_dotenv_are_warned_about_and_unrelated_ones_not(
    tmp_path: Path,
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("VELVETROPE_PROT=9000\nVELVETROPE_PORT=9001\nOTHER=1\n")
    warnings = unknown_variables({"VELVETROPE_QWERTY": "1", "PATH": "/bin"}, dotenv)
    assert warnings == [
        "VELVETROPE_PROT (in " + str(dotenv) + ") is not a velvetrope setting; "
        "did you mean VELVETROPE_PORT?",
        "VELVETROPE_QWERTY (in the environment) is not a velvetrope setting (ignored)",
    ]


def test_OPS_S5_a_malformed_duration_says_which_forms_are_accepted(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VELVETROPE_SESSION_IDLE_TIMEOUT", "30min")
    line = assert_one_line_error(
        cli("users", "list"), says="'30min' is not a duration", exit_code=2
    )
    assert "seconds (1800)" in line
    assert "ISO 8601 (PT30M" in line


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        (
            {"VELVETROPE_SESSION_IDLE_TIMEOUT": "0"},
            "VELVETROPE_SESSION_IDLE_TIMEOUT must be a positive duration",
        ),
        (
            {"VELVETROPE_SESSION_IDLE_TIMEOUT": "PT13H"},
            "VELVETROPE_SESSION_IDLE_TIMEOUT (46,800 s) cannot exceed "
            "VELVETROPE_SESSION_ABSOLUTE_LIFETIME (43,200 s)",
        ),
        (
            {"VELVETROPE_SESSION_TOUCH_INTERVAL": "1800"},
            "VELVETROPE_SESSION_TOUCH_INTERVAL (1,800 s) must be shorter than "
            "VELVETROPE_SESSION_IDLE_TIMEOUT (1,800 s)",
        ),
        (
            {"VELVETROPE_SESSION_TRANSIENT_LIFETIME": "0"},
            "VELVETROPE_SESSION_TRANSIENT_LIFETIME must be a positive duration",
        ),
        (
            {
                "VELVETROPE_SESSION_ABSOLUTE_LIFETIME": "P31D",
                "VELVETROPE_SESSION_TRANSIENT_LIFETIME": "P1D",
            },
            "VELVETROPE_SESSION_ABSOLUTE_LIFETIME must be at most 30 days",
        ),
        ({"VELVETROPE_ACCESS_TOKEN_TTL": "0"}, "VELVETROPE_ACCESS_TOKEN_TTL must be a positive"),
        (
            {"VELVETROPE_ACCESS_TOKEN_TTL": "7200"},
            "VELVETROPE_ACCESS_TOKEN_TTL must be at most 1 hour",
        ),
        (
            {"VELVETROPE_REFRESH_IDLE_TIMEOUT": "P40D"},
            "VELVETROPE_REFRESH_IDLE_TIMEOUT (3,456,000 s) cannot exceed "
            "VELVETROPE_REFRESH_ABSOLUTE_LIFETIME (2,592,000 s)",
        ),
    ],
    ids=[
        "idle-zero",
        "idle-past-absolute",
        "touch-not-shorter",
        "transient-zero",
        "absolute-over-30d",
        "access-zero",
        "access-over-1h",
        "refresh-idle-past-absolute",
    ],
)
def test_OPS_S5_a_duration_out_of_range_names_its_variable(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, setting: dict[str, str], says: str
) -> None:
    for name, value in setting.items():
        monkeypatch.setenv(name, value)
    assert_one_line_error(cli("users", "list"), says=says, exit_code=2)


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("variable", "url", "says"),
    [
        pytest.param(
            "VELVETROPE_REDIS_URL",
            "redis://:secret@127.0.0.1:{port}/0",
            "cannot reach Redis at redis://127.0.0.1:{port}/0",
            id="redis",
        ),
        pytest.param(
            "VELVETROPE_DATABASE_URL",
            "postgresql://ann:secret@127.0.0.1:{port}/test",
            "cannot reach PostgreSQL (PostgreSQL at 127.0.0.1:{port}/test)",
            id="postgresql",
        ),
    ],
)
def test_OPS_S1_a_store_unreachable_at_start_is_one_sentence(
    servers: Servers, variable: str, url: str, says: str
) -> None:
    port = free_port()  # nothing listens there
    refused = servers.refused("--port", "0", env={variable: url.format(port=port)})
    assert refused.returncode == 1
    line = _one_error_line(refused.stderr)
    assert says.format(port=port) in line
    assert "secret" not in line


@pytest.mark.e2e
def test_OPS_S1_a_port_in_use_is_refused_before_start_up(servers: Servers, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = servers.refused("--port", str(port), "--database", "vr.db")
    assert refused.returncode == 1
    line = _one_error_line(refused.stderr)
    assert f"cannot listen on 127.0.0.1:{port}: the port is already in use" in line
    assert not (tmp_path / "vr.db").exists()  # refused before the stores were opened
    assert os.listdir(tmp_path) == []


def test_OPS_W1_several_workers_on_memory_stores_are_refused(cli: Cli) -> None:
    """Each worker would have users and sessions of its own."""
    result = cli("serve", "--workers", "2", "--port", "0", database="memory://")
    assert_one_line_error(result, says="keeps each worker's users and sessions apart", exit_code=2)
