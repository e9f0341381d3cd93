"""``velvetrope lab``: measure the notes' claims on this machine and report the verdicts."""

from __future__ import annotations

import importlib.util
import signal
import sys
from pathlib import Path
from types import FrameType

import typer

from velvetrope.cli.common import err, fail, out

__all__ = ["lab"]

INSTALL_HINT = (
    "velvetrope lab needs its optional extra for the plots and the browser cells: "
    "pip install 'velvetrope[lab]'"
)


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    # Python's default for SIGTERM skips `finally`; exiting this way stops the lab's servers.
    raise SystemExit(128 + signum)


QuickOption = typer.Option(
    False,
    "--quick",
    help=(
        "The CI-sized run: under a minute; every cell, but fewer rounds, shorter loads and "
        "fewer store and node combinations (claims that need those say 'not measured')."
    ),
)
OnlyOption = typer.Option(
    "", "--only", help="Comma-separated cells (ids or numbers), e.g. wire,verify or 1,2."
)
OutOption = typer.Option(
    Path("lab-results"),
    "--out",
    help="The directory for results.json, report.html, report.md and plots/ (created).",
)


def lab(quick: bool = QuickOption, only: str = OnlyOption, out_dir: Path = OutOption) -> None:
    """Measure the notes' claims (bytes, verification cost, throughput, revocation, ...) here."""
    if importlib.util.find_spec("matplotlib") is None:
        fail(INSTALL_HINT)
    from velvetrope.lab.matrix import select  # noqa: PLC0415 - loads the extra's packages
    from velvetrope.lab.runner import LabOptions, prepare_out, run_lab  # noqa: PLC0415

    names = tuple(n.strip() for n in only.split(",") if n.strip())
    try:
        select(list(names))
    except ValueError as exc:
        fail(str(exc), code=2)
    try:
        prepare_out(out_dir)
    except OSError as exc:
        fail(f"--out {out_dir}: {exc.strerror or exc}", code=2)
    options = LabOptions(
        quick=quick, only=names, out=out_dir, command=" ".join(["velvetrope", *sys.argv[1:]])
    )
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        results = run_lab(options, console=err)
    finally:
        signal.signal(signal.SIGTERM, previous)
    counts: dict[str, int] = {}
    for cell in results["cells"]:
        counts[cell["status"]] = counts.get(cell["status"], 0) + 1
    summary = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in sorted(counts.items()))
    out.print(
        f"{len(results['cells'])} cells ({summary}) in {results['seconds']:.0f} s; "
        f"noise: {results['noise']['verdict']}"
    )
    for name in ("results.json", "report.html", "report.md"):
        out.print(f"wrote {out_dir / name}")
