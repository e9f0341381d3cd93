"""``velvetrope sessions list | revoke``."""

from __future__ import annotations

import typer
from rich.table import Table

from velvetrope.cli.common import DatabaseOption, fail, out, print_table, run_with_service
from velvetrope.core.service import AuthService
from velvetrope.stores.records import SessionRecord, UserRecord
from velvetrope.web.schemas import iso

__all__ = ["sessions_app"]

sessions_app = typer.Typer(help="Inspect and end sessions.", no_args_is_help=True)


@sessions_app.command("list")
def list_sessions(
    user: str = typer.Argument(..., help="Email address or user id."),
    database: str = DatabaseOption,
) -> None:
    """List a user's live sessions."""

    async def work(service: AuthService) -> tuple[UserRecord, list[SessionRecord]]:
        record = await service.users.find(user)
        return record, list(await service.sessions.list(record.id))

    record, sessions = run_with_service(database, work)
    table = Table("handle", "created", "last seen", "ip", "user agent", title=record.email)
    for s in sessions:
        table.add_row(s.handle, iso(s.created_at), iso(s.last_seen_at), s.ip, s.user_agent)
    print_table(table)


@sessions_app.command("revoke")
def revoke(
    user: str = typer.Argument(..., help="Email address or user id."),
    handle: str = typer.Argument(None, help="The session's handle (from `sessions list`)."),
    all_sessions: bool = typer.Option(False, "--all", help="End every session of the user."),
    database: str = DatabaseOption,
) -> None:
    """End one session of a user (by handle), or all of them with --all."""
    if (handle is None) == (not all_sessions):
        fail("give either a session handle or --all", code=2)

    async def work(service: AuthService) -> int:
        record = await service.users.find(user)
        if all_sessions:
            return await service.sessions.end_all(record.id)
        await service.sessions.end_by_handle(record.id, handle)
        return 1

    ended = run_with_service(database, work)
    out.print(f"ended {ended} session(s)")
