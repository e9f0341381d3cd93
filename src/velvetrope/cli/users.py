"""``velvetrope users create | list | disable | enable``."""

from __future__ import annotations

import typer
from rich.table import Table

from velvetrope.cli.common import (
    DatabaseOption,
    fail,
    out,
    print_table,
    read_secret_line,
    run_with_service,
)
from velvetrope.core.service import AuthService
from velvetrope.stores.records import UserRecord
from velvetrope.web.schemas import iso

__all__ = ["users_app"]

users_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)


@users_app.command("create")
def create(
    email: str = typer.Argument(..., help="The new account's email address."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
    database: str = DatabaseOption,
) -> None:
    """Create an account (prompts for the password unless --password-stdin)."""
    if password_stdin:
        password = read_secret_line()
        if not password:
            fail("no password on standard input", code=2)
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def work(service: AuthService) -> UserRecord:
        return await service.register(email, password)

    user = run_with_service(database, work, creates=True)
    out.print(f"created {user.email} ({user.id})")


@users_app.command("list")
def list_users(
    limit: int = typer.Option(100, min=1, max=10_000, help="How many to show."),
    offset: int = typer.Option(0, min=0, help="How many to skip."),
    database: str = DatabaseOption,
) -> None:
    """List accounts, oldest first."""

    async def work(service: AuthService) -> list[UserRecord]:
        return list(await service.list_users(limit=limit, offset=offset))

    users = run_with_service(database, work)
    table = Table("id", "email", "created", "status")
    for user in users:
        table.add_row(
            user.id, user.email, iso(user.created_at), "disabled" if user.disabled else "active"
        )
    print_table(table)


@users_app.command("disable")
def disable(
    user: str = typer.Argument(..., help="Email address or user id."),
    database: str = DatabaseOption,
) -> None:
    """Disable an account and end all its sessions."""

    async def work(service: AuthService) -> tuple[UserRecord, int]:
        record = await service.find_user(user)
        return record, await service.disable_user(record.id)

    record, ended = run_with_service(database, work)
    out.print(f"disabled {record.email}; ended {ended} session(s)")


@users_app.command("enable")
def enable(
    user: str = typer.Argument(..., help="Email address or user id."),
    database: str = DatabaseOption,
) -> None:
    """Allow a disabled account to sign in again."""

    async def work(service: AuthService) -> UserRecord:
        record = await service.find_user(user)
        await service.enable_user(record.id)
        return record

    record = run_with_service(database, work)
    out.print(f"enabled {record.email}")
