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
from rich.table import Table
from rich.text import Text

from velvetrope.bootstrap import build_service
from velvetrope.core.service import AuthService
from velvetrope.errors import AuthError
from velvetrope.settings import Settings, describe_validation_error
from velvetrope.web.context import build_gateway

__all__ = [
    "DatabaseOption",
    "err",
    "fail",
    "load_settings",
    "out",
    "print_table",
    "run_with_service",
]

T = TypeVar("T")

# markup=False: messages and table cells carry text users and clients chose (emails,
# pasted ids, User-Agent headers); it must print as-is, never be parsed as rich markup.
# soft_wrap=True: a line is never broken at the console width (scripts read it).
out = Console(highlight=False, markup=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)

DatabaseOption = typer.Option(
    None,
    "--database",
    "-d",
    help="SQLite path or database URL (default: $VELVETROPE_DATABASE_URL or ./velvetrope.db).",
    show_default=False,
)


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print ``message`` to stderr and exit with ``code``."""
    err.print(Text.assemble(("error:", "bold red"), " ", message))
    raise typer.Exit(code)


def print_table(table: Table) -> None:
    """Print ``table`` without shortening any cell: ids and handles are copied from it.

    Rich fits a table to the console (80 columns when stdout is a pipe) by cutting
    cells short with an ellipsis; a table wider than that gets its natural width.
    """
    natural = out.measure(table, options=out.options.update_width(1_000_000)).maximum
    if natural <= out.width:
        out.print(table)
        return
    # Console.print clamps width= to the console's own width, hence a wider twin.
    wide = Console(
        file=out.file,
        width=natural,
        color_system=out.color_system,  # type: ignore[arg-type]
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    wide.print(table)


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
    service = build_service(settings)
    # With the hybrid gateway on, the sign-outs a command makes are pushed to the
    # services behind it as the server's are (the gateway's event sink queues them).
    gateway = build_gateway(settings, service)
    try:
        await service.start(rotate_keys=False)  # only the server (and `keys rotate`) rotates
        yield service
        if gateway is not None:
            await gateway.flush()
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
