"""``velvetrope sessions list | revoke``."""

from __future__ import annotations

import typer
from rich.table import Table

from velvetrope.cli.common import DatabaseOption, fail, out, print_table, run_with_service
from velvetrope.core.service import AuthService
from velvetrope.errors import SessionNotFound
from velvetrope.stores.records import RefreshFamilyRecord, SessionRecord, UserRecord
from velvetrope.web.schemas import iso

__all__ = ["sessions_app"]

sessions_app = typer.Typer(help="Inspect and end sessions.", no_args_is_help=True)


@sessions_app.command("list")
def list_sessions(
    user: str = typer.Argument(..., help="Email address or user id."),
    database: str = DatabaseOption,
) -> None:
    """List a user's devices: live sessions and token families."""

    async def work(
        service: AuthService,
    ) -> tuple[UserRecord, list[SessionRecord], list[RefreshFamilyRecord]]:
        record = await service.users.find(user)
        sessions = list(await service.sessions.list(record.id))
        return record, sessions, await service.tokens.refresh.list(record.id)

    record, sessions, families = run_with_service(database, work)
    table = Table("handle", "kind", "created", "last seen", "ip", "user agent", title=record.email)
    for s in sessions:
        table.add_row(
            s.handle, "session", iso(s.created_at), iso(s.last_seen_at), s.ip, s.user_agent
        )
    for f in families:
        table.add_row(f.id, "tokens", iso(f.created_at), iso(f.last_used_at), f.ip, f.user_agent)
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
            ended = await service.sessions.end_all(record.id)
            return ended + await service.tokens.revoke_user(record.id)
        try:
            await service.sessions.end_by_handle(record.id, handle)
        except SessionNotFound:
            family = await service.tokens.refresh.get(handle)
            if family is None or family.user_id != record.id or family.revoked_at:
                raise
            await service.tokens.revoke_family(handle)
        return 1

    ended = run_with_service(database, work)
    out.print(f"ended {ended} session(s)")
