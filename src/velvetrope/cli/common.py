"""What every command shares: settings from flags and environment, clean failures."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from velvetrope.bootstrap import build_service
from velvetrope.core.service import AuthService
from velvetrope.errors import AuthError, StoreUnavailable
from velvetrope.settings import Settings, describe_validation_error
from velvetrope.startup import describe_store_failure, dotenv_problem, unknown_variables
from velvetrope.stores.registry import sqlite_path
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
def clean_errors(settings: Settings | None = None) -> Iterator[None]:
    """Turn configuration and auth errors into one sentence and an exit code (a store
    that cannot be reached is named, with ``settings``' address for it)."""
    try:
        yield
    except ValidationError as exc:
        fail(describe_validation_error(exc), code=2)
    except StoreUnavailable as exc:
        fail(describe_store_failure(exc, settings))
    except AuthError as exc:
        fail(exc.detail)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with command-line flags (not ``None``) on top.

    An unreadable ``.env`` stops the command; a ``VELVETROPE_*`` variable that names
    no setting is warned about, with the nearest valid name.
    """
    problem = dotenv_problem()
    if problem is not None:
        fail(problem, code=2)
    for warning in unknown_variables():
        err.print(Text.assemble(("warning:", "bold yellow"), " ", warning))
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


def run_with_service(
    database: str | None,
    work: Callable[[AuthService], Awaitable[T]],
    *,
    creates: bool = False,
) -> T:
    """Open the configured stores, run ``work`` with the service, close, return its result.

    Only commands that ``creates`` (``users create``) may make a new SQLite database;
    the others, pointed at a file that is not there, say so instead of leaving an
    empty database behind.
    """
    settings = load_settings(database_url=database)
    if settings.database_url == "memory://":
        fail("memory:// keeps nothing between processes; point --database at a real store")
    path = sqlite_path(settings.database_url)
    if not creates and path is not None and path != ":memory:" and not Path(path).exists():
        fail(
            f"no velvetrope database at {path}; run this where the server's database is, "
            "or name it with --database (velvetrope serve or velvetrope migrate creates one)"
        )

    async def go() -> T:
        async with _service(settings) as service:
            return await work(service)

    with clean_errors(settings):
        return asyncio.run(go())
    raise AssertionError("unreachable")  # pragma: no cover


def read_secret_line() -> str:
    """Read one line from stdin without its line ending (for ``--password-stdin``)."""
    line = sys.stdin.readline()
    return line.removesuffix("\n").removesuffix("\r")
