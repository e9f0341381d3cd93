"""CLI fixtures: the typer app in-process, a SQLite file, and the service on that same file.

Sessions are created through :class:`AuthService` on the very SQLite file the command
line opens, so a test sees exactly what a running server would see.
"""

from __future__ import annotations

import asyncio
import re
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from typer.testing import CliRunner, Result

from tests.support.services import PASSWORD, running
from velvetrope import AuthService, NotAuthenticated, Settings
from velvetrope.bootstrap import build_service
from velvetrope.cli import app
from velvetrope.stores.records import SessionRecord, UserRecord

T = TypeVar("T")

WIDE = "200"  # a wide terminal: table cells are never shortened
PIPE_WIDTH = "80"  # what rich assumes when stdout is not a terminal

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(text: str) -> str:
    """``text`` without terminal escape sequences (rich may colour it)."""
    return _ANSI.sub("", text)


@pytest.fixture(autouse=True)
def isolated(no_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``VELVETROPE_*`` from the caller, no ``.env`` or ``./velvetrope.db`` from the cwd.

    The cheap-but-real ``owasp-minimum`` hash profile keeps ``users create`` fast; the
    profile does not change anything the command line does.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VELVETROPE_PASSWORD_HASH_PROFILE", "owasp-minimum")


@dataclass
class Database:
    """The SQLite file the commands run against, and the service opened on it."""

    path: Path

    @property
    def url(self) -> str:
        return str(self.path)

    def run(self, work: Callable[[AuthService], Awaitable[T]]) -> T:
        """Open the service on this file, run ``work``, close it."""

        async def go() -> T:
            settings = Settings(database_url=self.url, _env_file=None)
            async with running(build_service(settings)) as service:
                return await work(service)

        return asyncio.run(go())

    def user(self, email_or_id: str) -> UserRecord:
        async def work(service: AuthService) -> UserRecord:
            return await service.users.find(email_or_id)

        return self.run(work)

    def register(self, email: str, password: str = PASSWORD) -> UserRecord:
        async def work(service: AuthService) -> UserRecord:
            return await service.register(email, password)

        return self.run(work)

    def start_session(
        self, email: str, *, ip: str = "203.0.113.7", user_agent: str = "pytest"
    ) -> tuple[str, str]:
        """Start a session for ``email`` as a sign-in would; return (secret, handle)."""

        async def work(service: AuthService) -> tuple[str, str]:
            user = await service.users.find(email)
            issued = await service.sessions.start(user.id, ip=ip, user_agent=user_agent)
            return issued.secret, issued.record.handle

        return self.run(work)

    def is_live(self, secret: str) -> bool:
        """Whether the session ID would still be accepted on a request."""

        async def work(service: AuthService) -> bool:
            try:
                await service.authenticate(secret)
            except NotAuthenticated:
                return False
            return True

        return self.run(work)

    def sessions(self, email: str) -> list[SessionRecord]:
        async def work(service: AuthService) -> list[SessionRecord]:
            user = await service.users.find(email)
            return list(await service.sessions.list(user.id))

        return self.run(work)

    def can_sign_in(self, email: str, password: str = PASSWORD) -> None:
        """Sign in with the password (raises what a sign-in would raise)."""

        async def work(service: AuthService) -> None:
            await service.login(email, password)

        self.run(work)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "vr.db")


class Cli:
    """Runs ``velvetrope ARGS --database DB`` in-process."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.runner = CliRunner()

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        database: str | None = "default",
        columns: str = WIDE,
    ) -> Result:
        argv = list(args)
        if database is not None:
            argv += ["--database", self.db.url if database == "default" else database]
        return self.runner.invoke(app, argv, input=input, env={"COLUMNS": columns})

    def ok(self, *args: str, input: str | None = None, columns: str = WIDE) -> str:
        """Run, require success, return stdout (escape sequences removed)."""
        result = self(*args, input=input, columns=columns)
        assert result.exit_code == 0, describe(result)
        return plain(result.stdout)

    def create_user(self, email: str, password: str = PASSWORD) -> str:
        """``users create EMAIL --password-stdin``; return the stdout."""
        return self.ok("users", "create", email, "--password-stdin", input=f"{password}\n")


@pytest.fixture
def cli(db: Database) -> Cli:
    return Cli(db)


def describe(result: Result) -> str:
    """Everything about a run, for assertion messages."""
    text = f"exit code {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    if result.exc_info is not None and not isinstance(result.exception, SystemExit):
        text += "\n" + "".join(traceback.format_exception(*result.exc_info))
    return text


def assert_one_line_error(result: Result, *, says: str, exit_code: int | None = None) -> str:
    """A clean failure: non-zero exit, no traceback, one ``error:`` line on stderr saying
    ``says``, nothing on stdout. Returns the line."""
    assert result.exit_code != 0, describe(result)
    if exit_code is not None:
        assert result.exit_code == exit_code, describe(result)
    # Anything but SystemExit means the command crashed (a traceback for a real user).
    assert isinstance(result.exception, SystemExit), describe(result)
    assert "Traceback" not in result.output, describe(result)
    lines = plain(result.stderr).strip().splitlines()
    assert len(lines) == 1, describe(result)
    assert lines[0].startswith("error: "), describe(result)
    assert says in lines[0], describe(result)
    assert result.stdout.strip() == "", describe(result)
    return lines[0]
