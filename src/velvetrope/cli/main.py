"""Entry point: ``velvetrope serve | migrate | lab | users | sessions | keys | version``."""

from __future__ import annotations

import typer

from velvetrope._version import __version__
from velvetrope.cli.events import events
from velvetrope.cli.keys import keys_app
from velvetrope.cli.lab import lab
from velvetrope.cli.migrate import migrate
from velvetrope.cli.serve import serve
from velvetrope.cli.sessions import sessions_app
from velvetrope.cli.users import users_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="velvetrope",
    help="Session, JWT and hybrid authentication: the auth server and its tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(serve)
app.command()(migrate)
app.command()(lab)
app.add_typer(users_app, name="users")
app.add_typer(sessions_app, name="sessions")
app.add_typer(keys_app, name="keys")
app.command()(events)  # velvetrope events USER: the persisted security log


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    """Run the command line."""
    app()
