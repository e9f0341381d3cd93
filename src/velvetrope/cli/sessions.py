"""``velvetrope sessions list | revoke``."""

from __future__ import annotations

import typer
from rich.table import Table

from velvetrope.cli.common import DatabaseOption, fail, out, print_table, run_with_service
from velvetrope.core.devices import Device
from velvetrope.core.service import AuthService
from velvetrope.stores.records import UserRecord
from velvetrope.web.schemas import iso

__all__ = ["sessions_app"]

sessions_app = typer.Typer(help="Inspect and end sessions.", no_args_is_help=True)


@sessions_app.command("list")
def list_sessions(
    user: str = typer.Argument(..., help="Email address or user id."),
    database: str = DatabaseOption,
) -> None:
    """List a user's devices: live sessions and token families."""

    async def work(service: AuthService) -> tuple[UserRecord, list[Device]]:
        record = await service.find_user(user)
        return record, await service.devices(record.id)

    record, devices = run_with_service(database, work)
    table = Table("handle", "kind", "created", "last seen", "ip", "user agent", title=record.email)
    for d in sorted(devices, key=lambda d: d.kind != "session"):  # sessions, then tokens
        table.add_row(d.handle, d.kind, iso(d.created_at), iso(d.last_seen_at), d.ip, d.user_agent)
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
        record = await service.find_user(user)
        if all_sessions:
            return await service.sign_out_everywhere(record.id)
        await service.end_device(record.id, handle)
        return 1

    ended = run_with_service(database, work)
    out.print(f"ended {ended} session(s)")
