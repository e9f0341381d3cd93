"""``velvetrope users | sessions | version``: what operators type, against a real SQLite file."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

import velvetrope
from tests.cli.conftest import (
    PIPE_WIDTH,
    Cli,
    Database,
    assert_one_line_error,
    describe,
    plain,
)
from tests.support.services import PASSWORD
from velvetrope import AccountDisabled, InvalidCredentials

# --- users create ---------------------------------------------------------------------


def test_users_create_reads_the_password_from_stdin_and_the_account_can_sign_in(
    cli: Cli, db: Database
) -> None:
    out = cli.create_user("ann@example.com")
    user = db.user("ann@example.com")
    assert out.strip() == f"created ann@example.com ({user.id})"
    assert PASSWORD not in out
    db.can_sign_in("ann@example.com")
    with pytest.raises(InvalidCredentials):
        db.can_sign_in("ann@example.com", PASSWORD + "!")


def test_users_create_normalises_the_email_like_registration_does(cli: Cli, db: Database) -> None:
    out = cli.create_user("  Ann@Example.COM ")
    assert "created ann@example.com" in out
    assert db.user("ann@example.com").email == "ann@example.com"


def test_password_stdin_strips_only_the_line_ending(cli: Cli, db: Database) -> None:
    password = "  spaces at both ends are part of it  "
    cli.ok("users", "create", "ann@example.com", "--password-stdin", input=f"{password}\r\n")
    db.can_sign_in("ann@example.com", password)
    with pytest.raises(InvalidCredentials):
        db.can_sign_in("ann@example.com", password.strip())


def test_users_create_without_password_stdin_prompts_twice(cli: Cli, db: Database) -> None:
    out = cli.ok("users", "create", "ann@example.com", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert "created ann@example.com" in out
    assert PASSWORD not in out  # hidden input is not echoed
    db.can_sign_in("ann@example.com")


def test_users_create_with_nothing_on_stdin_is_a_usage_error(cli: Cli, db: Database) -> None:
    result = cli("users", "create", "ann@example.com", "--password-stdin", input="")
    assert_one_line_error(result, says="no password on standard input", exit_code=2)
    assert not db.path.exists()


@pytest.mark.parametrize(
    ("email", "password", "says"),
    [
        pytest.param("ann@example.com", "short", "at least 15 characters", id="weak-password"),
        pytest.param("not-an-email", PASSWORD, "not valid", id="invalid-email"),
    ],
)
def test_users_create_refuses_bad_input_in_one_line(
    cli: Cli, db: Database, email: str, password: str, says: str
) -> None:
    result = cli("users", "create", email, "--password-stdin", input=f"{password}\n")
    assert_one_line_error(result, says=says)
    assert password not in result.output


def test_users_create_twice_is_a_one_line_error_and_keeps_the_first_account(
    cli: Cli, db: Database
) -> None:
    cli.create_user("ann@example.com")
    first = db.user("ann@example.com")
    result = cli(
        "users", "create", "ANN@example.com", "--password-stdin", input="another long passphrase\n"
    )
    assert_one_line_error(result, says="already exists")
    assert db.user("ann@example.com") == first
    db.can_sign_in("ann@example.com")


# --- users list / disable / enable ----------------------------------------------------


def _row(out: str, needle: str) -> str:
    [line] = [line for line in out.splitlines() if needle in line]
    return line


def test_users_list_shows_accounts_oldest_first_with_their_status(cli: Cli, db: Database) -> None:
    cli.create_user("ann@example.com")
    cli.create_user("bob@example.com")
    cli.ok("users", "disable", "bob@example.com")

    out = cli.ok("users", "list")
    lines = out.splitlines()
    ann = lines.index(_row(out, "ann@example.com"))
    bob = lines.index(_row(out, "bob@example.com"))
    assert ann < bob
    assert "active" in lines[ann]
    assert "disabled" in lines[bob]
    assert db.user("ann@example.com").id in lines[ann]


def test_users_list_pages_with_limit_and_offset(cli: Cli) -> None:
    for name in ("ann", "bob", "cyd"):
        cli.create_user(f"{name}@example.com")
    first = cli.ok("users", "list", "--limit", "1")
    assert "ann@example.com" in first
    assert "bob@example.com" not in first
    rest = cli.ok("users", "list", "--offset", "1", "--limit", "5")
    assert "ann@example.com" not in rest
    assert "bob@example.com" in rest
    assert "cyd@example.com" in rest


def test_users_list_of_an_empty_database_succeeds(cli: Cli) -> None:
    cli.ok("migrate")
    out = cli.ok("users", "list")
    assert "@" not in out


def test_users_disable_ends_all_that_users_sessions_and_blocks_sign_in(
    cli: Cli, db: Database
) -> None:
    """TERM-04: disabling an account ends every session it has, and only its own."""
    cli.create_user("ann@example.com")
    cli.create_user("bob@example.com")
    ann_laptop, _ = db.start_session("ann@example.com", user_agent="laptop")
    ann_phone, _ = db.start_session("ann@example.com", user_agent="phone")
    bob, _ = db.start_session("bob@example.com")
    assert db.is_live(ann_laptop)

    out = cli.ok("users", "disable", "ann@example.com")

    assert out.strip() == "disabled ann@example.com; ended 2 session(s)"
    assert not db.is_live(ann_laptop)
    assert not db.is_live(ann_phone)
    assert db.is_live(bob)
    with pytest.raises(AccountDisabled):
        db.can_sign_in("ann@example.com")


def test_users_disable_and_enable_accept_the_user_id(cli: Cli, db: Database) -> None:
    cli.create_user("ann@example.com")
    user_id = db.user("ann@example.com").id
    assert "disabled ann@example.com" in cli.ok("users", "disable", user_id)
    assert db.user(user_id).disabled
    assert "enabled ann@example.com" in cli.ok("users", "enable", user_id)
    assert not db.user(user_id).disabled


def test_users_enable_allows_sign_in_again_but_revives_no_session(cli: Cli, db: Database) -> None:
    cli.create_user("ann@example.com")
    old, _ = db.start_session("ann@example.com")
    cli.ok("users", "disable", "ann@example.com")

    out = cli.ok("users", "enable", "ann@example.com")

    assert out.strip() == "enabled ann@example.com"
    db.can_sign_in("ann@example.com")
    assert not db.is_live(old)


def test_users_disable_twice_ends_nothing_the_second_time(cli: Cli, db: Database) -> None:
    cli.create_user("ann@example.com")
    db.start_session("ann@example.com")
    assert "ended 1 session(s)" in cli.ok("users", "disable", "ann@example.com")
    assert "ended 0 session(s)" in cli.ok("users", "disable", "ann@example.com")


# --- sessions list / revoke -----------------------------------------------------------


def _table_rows(out: str) -> list[str]:
    """The body rows of a rich table (each row on one line for these short cells)."""
    return [line for line in out.splitlines() if line.startswith("│")]


def test_sessions_list_shows_that_users_live_sessions_only(cli: Cli, db: Database) -> None:
    cli.create_user("ann@example.com")
    cli.create_user("bob@example.com")
    _, laptop = db.start_session("ann@example.com", ip="198.51.100.1", user_agent="laptop")
    _, phone = db.start_session("ann@example.com", ip="198.51.100.2", user_agent="phone")
    db.start_session("bob@example.com", ip="192.0.2.99", user_agent="bobs-browser")

    out = cli.ok("sessions", "list", "ann@example.com")

    rows = _table_rows(out)
    assert len(rows) == 2
    assert laptop in _row(out, "laptop")
    assert "198.51.100.1" in _row(out, "laptop")
    assert phone in _row(out, "phone")
    assert "bobs-browser" not in out
    assert "192.0.2.99" not in out


def test_sessions_list_never_shows_session_secrets(cli: Cli, db: Database) -> None:
    cli.create_user("ann@example.com")
    secret, _ = db.start_session("ann@example.com")
    out = cli.ok("sessions", "list", "ann@example.com")
    assert secret not in out
    assert secret[:12] not in out


def test_sessions_list_of_a_user_without_sessions_has_no_rows(cli: Cli) -> None:
    cli.create_user("ann@example.com")
    assert _table_rows(cli.ok("sessions", "list", "ann@example.com")) == []


def test_sessions_revoke_by_handle_ends_exactly_that_session(cli: Cli, db: Database) -> None:
    cli.create_user("ann@example.com")
    laptop, laptop_handle = db.start_session("ann@example.com", user_agent="laptop")
    phone, _ = db.start_session("ann@example.com", user_agent="phone")

    out = cli.ok("sessions", "revoke", "ann@example.com", laptop_handle)

    assert out.strip() == "ended 1 session(s)"
    assert not db.is_live(laptop)
    assert db.is_live(phone)
    assert [s.user_agent for s in db.sessions("ann@example.com")] == ["phone"]


def test_sessions_revoke_all_ends_every_session_of_that_user_only(cli: Cli, db: Database) -> None:
    cli.create_user("ann@example.com")
    cli.create_user("bob@example.com")
    ann = [db.start_session("ann@example.com")[0] for _ in range(3)]
    bob, _ = db.start_session("bob@example.com")

    out = cli.ok("sessions", "revoke", "ann@example.com", "--all")

    assert out.strip() == "ended 3 session(s)"
    assert not any(db.is_live(secret) for secret in ann)
    assert db.is_live(bob)
    db.can_sign_in("ann@example.com")  # ending sessions is not disabling the account


def test_sessions_revoke_cannot_end_another_users_session_by_handle(cli: Cli, db: Database) -> None:
    cli.create_user("ann@example.com")
    cli.create_user("bob@example.com")
    bob, bob_handle = db.start_session("bob@example.com")

    result = cli("sessions", "revoke", "ann@example.com", bob_handle)

    assert_one_line_error(result, says="No such session")
    assert db.is_live(bob)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["ann@example.com"], id="neither-handle-nor-all"),
        pytest.param(["ann@example.com", "0123456789abcdef01234567", "--all"], id="both"),
    ],
)
def test_sessions_revoke_needs_exactly_one_of_handle_or_all(
    cli: Cli, db: Database, args: list[str]
) -> None:
    cli.create_user("ann@example.com")
    secret, _ = db.start_session("ann@example.com")
    result = cli("sessions", "revoke", *args)
    assert_one_line_error(result, says="give either a session handle or --all", exit_code=2)
    assert db.is_live(secret)


# --- one-line errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["users", "disable", "nobody@example.com"], id="users-disable"),
        pytest.param(["users", "enable", "nobody@example.com"], id="users-enable"),
        pytest.param(["sessions", "list", "nobody@example.com"], id="sessions-list"),
        pytest.param(["sessions", "revoke", "nobody@example.com", "--all"], id="revoke-all"),
        pytest.param(["sessions", "list", "no-such-id"], id="by-id"),
    ],
)
def test_unknown_user_is_a_one_line_error(cli: Cli, args: list[str]) -> None:
    cli.create_user("ann@example.com")
    line = assert_one_line_error(cli(*args), says="No user")
    assert args[2] in line


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        pytest.param(
            ["users", "create", "ann@example.com", "--password-stdin"], PASSWORD, id="create"
        ),
        pytest.param(["users", "list"], None, id="list"),
        pytest.param(["users", "disable", "ann@example.com"], None, id="disable"),
        pytest.param(["sessions", "list", "ann@example.com"], None, id="sessions-list"),
        pytest.param(["sessions", "revoke", "ann@example.com", "--all"], None, id="revoke"),
    ],
)
def test_memory_database_is_refused_because_it_keeps_nothing(
    cli: Cli, args: list[str], stdin: str | None
) -> None:
    result = cli(*args, database="memory://", input=stdin)
    assert_one_line_error(result, says="memory:// keeps nothing")


@pytest.mark.parametrize(
    ("database", "says"),
    [
        pytest.param("sqlite://", "names no file", id="sqlite-url-without-path"),
        pytest.param("mysql://x", "not supported", id="unsupported-scheme"),
        pytest.param("/proc/nope/vr.db", "no velvetrope database", id="unwritable-path"),
    ],
)
def test_unusable_database_is_a_one_line_error(cli: Cli, database: str, says: str) -> None:
    assert_one_line_error(cli("users", "list", database=database), says=says)


def test_database_file_that_is_not_sqlite_is_a_one_line_error(cli: Cli, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"definitely not sqlite\x00" * 200)
    result = cli("users", "list", database=str(garbage))
    assert_one_line_error(result, says="cannot open SQLite database")
    assert garbage.read_bytes() == b"definitely not sqlite\x00" * 200


def test_invalid_setting_in_the_environment_is_a_one_line_error(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VELVETROPE_PASSWORD_MIN_LENGTH", "abc")
    result = cli("users", "list")
    assert_one_line_error(result, says="VELVETROPE_PASSWORD_MIN_LENGTH", exit_code=2)


def test_database_url_from_the_environment_is_used_without_the_flag(
    cli: Cli, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.create_user("ann@example.com")
    monkeypatch.setenv("VELVETROPE_DATABASE_URL", f"sqlite:///{db.path}")
    result = cli("users", "list", database=None)
    assert result.exit_code == 0, describe(result)
    assert "ann@example.com" in result.stdout


# --- user-controlled text is printed literally ----------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("[/]", id="stray-closing-tag"),
        pytest.param("[bold]mallory", id="opening-tag"),
    ],
)
def test_error_messages_print_user_input_literally_not_as_markup(cli: Cli, name: str) -> None:
    """An operator's typo (or a pasted value) must neither crash the command nor be
    silently rewritten in the message that quotes it."""
    cli.ok("migrate")
    line = assert_one_line_error(cli("users", "disable", name), says="No user")
    assert repr(name) in line


def test_sessions_list_prints_hostile_user_agents_literally(cli: Cli, db: Database) -> None:
    """The User-Agent is chosen by whoever signs in; rendered as markup it crashes the
    operator's `sessions list` ("[/]") or forges what the operator sees ("[white on white]")."""
    cli.create_user("ann@example.com")
    db.start_session("ann@example.com", user_agent="[/]x")
    db.start_session("ann@example.com", user_agent="[red]y[/red]")

    result = cli("sessions", "list", "ann@example.com")

    assert result.exit_code == 0, describe(result)
    out = plain(result.stdout)
    assert "[/]x" in out
    assert "[red]y[/red]" in out


# --- output a script can use (stdout not a terminal: 80 columns) ----------------------


def test_sessions_list_shows_full_handles_that_revoke_accepts_when_piped(
    cli: Cli, db: Database
) -> None:
    """`sessions revoke USER HANDLE` takes the handle "from `sessions list`": the listing
    must show it whole even at the 80 columns rich assumes for a pipe."""
    cli.create_user("ann@example.com")
    _, handle = db.start_session("ann@example.com", user_agent="Mozilla/5.0-(X11;Linux)")
    out = cli.ok("sessions", "list", "ann@example.com", columns=PIPE_WIDTH)
    assert handle in out


def test_users_list_shows_full_ids_and_emails_when_piped(cli: Cli, db: Database) -> None:
    """`users disable|enable` accept the id `users list` shows; it must not be cut short."""
    email = "ann.with-a-fairly-long-name@subdomain.example.com"
    cli.create_user(email)
    out = cli.ok("users", "list", columns=PIPE_WIDTH)
    assert db.user(email).id in out
    assert email in out


def test_users_create_reports_email_and_id_on_one_line_when_piped(cli: Cli, db: Database) -> None:
    email = "ann.with-a-fairly-long-name@subdomain.example.com"
    out = cli.ok(
        "users", "create", email, "--password-stdin", input=f"{PASSWORD}\n", columns=PIPE_WIDTH
    )
    assert out.splitlines() == [f"created {email} ({db.user(email).id})"]


# --- version, help, python -m ---------------------------------------------------------


def test_version_prints_the_installed_version(cli: Cli) -> None:
    result = cli("version", database=None)
    assert result.exit_code == 0, describe(result)
    assert result.stdout.strip() == velvetrope.__version__
    assert velvetrope.__version__ == importlib.metadata.version("velvetrope")


def _run_module(*args: str, stdin: str = "", cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("VELVETROPE_") and k not in {"COLUMNS", "LINES"}
    }
    env["VELVETROPE_PASSWORD_HASH_PROFILE"] = "owasp-minimum"
    return subprocess.run(
        [sys.executable, "-m", "velvetrope", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
        check=False,
    )


@pytest.mark.e2e
def test_python_m_velvetrope_help_lists_the_commands(tmp_path: Path) -> None:
    done = _run_module("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for command in ("serve", "users", "sessions", "version"):
        assert command in done.stdout
    assert done.stderr == ""


@pytest.mark.e2e
def test_python_m_velvetrope_version_matches_the_package(tmp_path: Path) -> None:
    done = _run_module("version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == velvetrope.__version__


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        pytest.param(
            ["users", "create", "ann@example.com", "--password-stdin"],
            "short\n",
            "at least 15 characters",
            id="weak-password",
        ),
        pytest.param(["users", "disable", "nobody@example.com"], "", "No user", id="unknown-user"),
        pytest.param(["sessions", "revoke", "ann@example.com"], "", "--all", id="revoke-no-handle"),
    ],
)
def test_errors_from_a_real_process_are_one_line_on_stderr_without_traceback(
    tmp_path: Path, args: list[str], stdin: str, says: str
) -> None:
    created = _run_module("migrate", "--database", str(tmp_path / "vr.db"), cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    done = _run_module(*args, "--database", str(tmp_path / "vr.db"), stdin=stdin, cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert says in lines[0]


@pytest.mark.e2e
def test_sessions_list_piped_from_a_real_process_shows_full_handles(
    tmp_path: Path, db: Database
) -> None:
    """Same as the in-process check, with a real pipe (no terminal, no COLUMNS)."""
    db.register("ann@example.com")
    _, handle = db.start_session("ann@example.com", user_agent="Mozilla/5.0")
    done = _run_module("sessions", "list", "ann@example.com", "--database", db.url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert handle in done.stdout
