"""Run the matrix: each cell in turn, with a rich progress bar, then write the results.

The run owns a scratch directory and the servers its cells start (:class:`Services`);
both are removed when it ends, also on errors and Ctrl-C. A cell that fails keeps
what it measured, and its error is recorded; the other cells still run.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from velvetrope._version import __version__
from velvetrope.lab.claims import judge_claims
from velvetrope.lab.context import LabContext
from velvetrope.lab.machine import NoiseCheck, describe_machine
from velvetrope.lab.matrix import Cell, select
from velvetrope.lab.model import SCHEMA_VERSION, CellResult, not_available
from velvetrope.lab.report import write_reports
from velvetrope.lab.services import Services

__all__ = ["LabOptions", "prepare_out", "run_lab"]


@dataclass(frozen=True, slots=True)
class LabOptions:
    """What ``velvetrope lab`` was asked to do."""

    quick: bool = False
    only: tuple[str, ...] = ()
    out: Path = Path("lab-results")
    command: str = "velvetrope lab"


def _timestamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def prepare_out(out: Path) -> None:
    """Create ``out`` and write (then remove) a file in it: a path the run could not
    write to fails here, before minutes of measuring, not after.

    Raises:
        OSError: ``out`` is a file, or cannot be created or written to.
    """
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a directory", str(out))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out, prefix=".velvetrope-lab-probe-"):
        pass


def _run_cell(cell: Cell, ctx: LabContext) -> CellResult:
    result = CellResult(cell.id, cell.number, cell.title)
    started = time.monotonic()
    try:
        cell.measure(ctx, result)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        logging.getLogger("velvetrope.lab").debug("cell %s failed", cell.id, exc_info=True)
        if os.environ.get("VELVETROPE_LAB_DEBUG"):
            traceback.print_exc()
    if not result.figures:
        result.figures.append(
            not_available("cell", cell.title, "-", f"the cell failed: {result.error}")
        )
    result.seconds = time.monotonic() - started
    return result


def run_lab(options: LabOptions, *, console: Console | None = None) -> dict[str, Any]:
    """Measure the selected cells, write ``results.json``, ``report.html`` and
    ``report.md`` to ``options.out``; return the results.

    Raises:
        ValueError: ``options.only`` names a cell that does not exist.
        OSError: ``options.out`` cannot be written to (checked before any cell runs).
    """
    cells = select(list(options.only))
    prepare_out(options.out)
    console = console or Console(stderr=True)
    logging.getLogger("velvetrope").setLevel(logging.WARNING)
    started_at, started = datetime.now(UTC), time.monotonic()
    machine = describe_machine()  # before our own load: the load average is the machine's
    noise = NoiseCheck()
    scratch = Path(tempfile.mkdtemp(prefix="velvetrope-lab-"))
    services = Services(scratch, noise.servers_cpu)
    results: list[CellResult] = []
    columns = (
        TextColumn("[bold]{task.fields[cell]}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    try:
        with Progress(*columns, console=console, transient=not console.is_terminal) as bar:
            task = bar.add_task("starting", total=len(cells), cell="lab")
            for cell in cells:
                budget = cell.quick_seconds if options.quick else cell.full_seconds
                bar.update(task, cell=f"{cell.number} {cell.id}", description=cell.title)

                def step(text: str, cell: Cell = cell) -> None:
                    bar.update(task, description=f"{cell.title}: {text}")

                ctx = LabContext(
                    quick=options.quick,
                    scratch=scratch,
                    services=services,
                    noise=noise,
                    deadline=time.monotonic() + budget,
                    step=step,
                )
                results.append(_run_cell(cell, ctx))
                bar.advance(task)
                console.print(
                    f"cell {cell.number} {cell.id}: {results[-1].status} "
                    f"in {results[-1].seconds:.1f} s"
                    + (f" (error: {results[-1].error})" if results[-1].error else ""),
                    markup=False,
                    highlight=False,
                )
    finally:
        services.close()
        shutil.rmtree(scratch, ignore_errors=True)
    cell_json = [r.to_json() for r in results]
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "mode": "quick" if options.quick else "full",
        "command": options.command,
        "started_at": _timestamp(started_at),
        "finished_at": _timestamp(datetime.now(UTC)),
        "seconds": round(time.monotonic() - started, 2),
        "velvetrope_version": __version__,
        "selected": [c.id for c in cells],
        "machine": machine,
        "noise": noise.judge(),
        "cells": cell_json,
        "claims": judge_claims(cell_json),
    }
    (options.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    write_reports(report, options.out)
    return report
