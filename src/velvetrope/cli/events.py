"""``velvetrope events USER``: a user's persisted security events."""

from __future__ import annotations

import json
from collections.abc import Sequence

import typer
from rich.table import Table

from velvetrope.cli.common import DatabaseOption, fail, out, print_table, run_with_service
from velvetrope.core.security_log import KEPT
from velvetrope.core.service import AuthService
from velvetrope.stores.records import SecurityEventRecord, UserRecord
from velvetrope.web.schemas import iso

__all__ = ["events"]


def events(
    user: str = typer.Argument(..., help="Email address or user id."),
    limit: int = typer.Option(50, min=1, max=10_000, help="Show at most this many, newest first."),
    event: list[str] = typer.Option(  # noqa: B008 - typer's way to declare a repeatable option
        [], "--event", help="Only this kind (repeatable), e.g. login_failed."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON array, for scripts."),
    database: str = DatabaseOption,
) -> None:
    """List a user's security events: sign-ins and failures (their address's too),
    throttling, revocations, refresh-token reuse, proof failures and admin actions."""
    unknown = sorted(set(event) - KEPT)
    if unknown:
        fail(f"unknown event {unknown[0]!r}; known: {', '.join(sorted(KEPT))}", code=2)

    async def work(service: AuthService) -> tuple[UserRecord, Sequence[SecurityEventRecord]]:
        record = await service.find_user(user)
        return record, await service.security_events(record, limit=limit, events=event)

    record, found = run_with_service(database, work)
    if as_json:
        out.print_json(json.dumps([_wire(e) for e in found]))
        return
    table = Table("time", "event", "ip", "device", "handle", "detail", title=record.email)
    for e in found:
        detail = "" if e.detail == "{}" else e.detail
        table.add_row(iso(e.at), e.event, e.ip, e.user_agent, e.handle, detail)
    print_table(table)


def _wire(e: SecurityEventRecord) -> dict[str, object]:
    return {
        "id": e.id,
        "at": iso(e.at),
        "event": e.event,
        "subject": e.subject,
        "ip": e.ip,
        "user_agent": e.user_agent,
        "handle": e.handle,
        "detail": json.loads(e.detail),
    }
