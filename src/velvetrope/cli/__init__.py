"""The ``velvetrope`` command line (typer)."""

from velvetrope.cli.main import app, main

__all__ = ["app", "main"]
