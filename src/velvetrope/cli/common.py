"""What every command shares: settings from flags and environment, clean failures."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from velvetrope.core.service import AuthService
from velvetrope.errors import AuthError
from velvetrope.settings import Settings, describe_validation_error

__all__ = ["DatabaseOption", "err", "fail", "load_settings", "out", "run_with_service"]

T = TypeVar("T")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

DatabaseOption = typer.Option(
    None,
    "--database",
    "-d",
    help="SQLite path or database URL (default: $VELVETROPE_DATABASE_URL or ./velvetrope.db).",
    show_default=False,
)


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print ``message`` to stderr and exit with ``code``."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def clean_errors() -> Iterator[None]:
    """Turn configuration and auth errors into one sentence and an exit code."""
    try:
        yield
    except ValidationError as exc:
        fail(describe_validation_error(exc), code=2)
    except AuthError as exc:
        fail(exc.detail)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with command-line flags (not ``None``) on top."""
    given = {k: v for k, v in overrides.items() if v is not None}
    with clean_errors():
        return Settings(**given)
    raise AssertionError("unreachable")  # pragma: no cover


@contextlib.asynccontextmanager
async def _service(settings: Settings) -> AsyncIterator[AuthService]:
    service = AuthService.from_settings(settings)
    try:
        yield service
    finally:
        await service.aclose()


def run_with_service(database: str | None, work: Callable[[AuthService], Awaitable[T]]) -> T:
    """Open the configured stores, run ``work`` with the service, close, return its result."""
    settings = load_settings(database_url=database)
    if settings.database_url == "memory://":
        fail("memory:// keeps nothing between processes; point --database at a real store")

    async def go() -> T:
        async with _service(settings) as service:
            return await work(service)

    with clean_errors():
        return asyncio.run(go())
    raise AssertionError("unreachable")  # pragma: no cover


def read_secret_line() -> str:
    """Read one line from stdin without its line ending (for ``--password-stdin``)."""
    line = sys.stdin.readline()
    return line.removesuffix("\n").removesuffix("\r")
