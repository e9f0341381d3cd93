"""``velvetrope keys list | rotate``."""

from __future__ import annotations

import typer
from rich.table import Table

from velvetrope.cli.common import DatabaseOption, out, print_table, run_with_service
from velvetrope.core.service import AuthService
from velvetrope.core.tokens.keys import SigningKey
from velvetrope.web.schemas import iso

__all__ = ["keys_app"]

keys_app = typer.Typer(
    help="Inspect and rotate the access-token signing keys.", no_args_is_help=True
)


@keys_app.command("list")
def list_keys(database: str = DatabaseOption) -> None:
    """List the signing keys that still verify tokens, newest (the signing one) first."""

    async def work(service: AuthService) -> list[SigningKey]:
        return list(service.signing_keys())

    keys = run_with_service(database, work)
    table = Table("kid", "alg", "created", "status")
    for key in keys:
        if key.retired_at is None:
            status = "signing"
        else:
            until = iso(key.expires_at) if key.expires_at else "?"
            status = f"verifying until {until}"
        table.add_row(key.kid, key.alg, iso(key.created_at), status)
    print_table(table)


@keys_app.command("rotate")
def rotate(database: str = DatabaseOption) -> None:
    """Make a new signing key now; the previous one verifies until its tokens expire."""

    async def work(service: AuthService) -> SigningKey:
        return await service.rotate_keys()

    key = run_with_service(database, work)
    out.print(f"new signing key {key.kid} ({key.alg}); running servers pick it up within seconds")
