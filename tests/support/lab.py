"""One quick lab run per test session, shared by the lab tests and the browser suite
(and by every pytest-xdist worker of the session: :func:`shared_quick_lab`).

``velvetrope lab --quick`` runs as a real process (it starts its own nodes, redis-server,
PostgreSQL cluster, nginx and Chromium). The tools it measures with are required: a
missing one skips the tests locally and fails them under CI (:mod:`tests.support.require`),
so CI never passes on a lab that marked its cells "not available" for want of a tool.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.require import missing

__all__ = ["LAB_TOOLS", "LabRun", "require_lab_tools", "run_quick_lab", "shared_quick_lab"]

LAB_TOOLS = {
    "wrk": "apt-get install wrk",
    "nginx": "apt-get install nginx",
    "redis-server": "apt-get install redis-server",
    "pg_ctl": "apt-get install postgresql",
    "chromium": "apt-get install chromium",
}
QUICK_TIMEOUT = 240  # seconds: the quick run is about a minute; a busy CI machine is slower


@dataclass(frozen=True)
class LabRun:
    """Where a quick run wrote, what it printed, and its results."""

    out: Path
    output: str
    results: dict[str, Any]


def require_lab_tools() -> None:
    """Skip (fail under CI) without matplotlib or a tool a cell measures with."""
    if importlib.util.find_spec("matplotlib") is None:
        missing("matplotlib is not installed (pip install 'velvetrope[lab]')")
    for tool, hint in LAB_TOOLS.items():
        found = shutil.which(tool) or (
            tool == "pg_ctl" and any(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        )
        if not found:
            missing(f"{tool} is not installed ({hint}); the lab measures with it")


def run_quick_lab(out: Path) -> LabRun:
    """Run ``velvetrope lab --quick --out OUT`` and load its results."""
    done = subprocess.run(
        [sys.executable, "-m", "velvetrope", "lab", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=QUICK_TIMEOUT,
        check=False,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise AssertionError(f"velvetrope lab --quick exited {done.returncode}:\n{output}")
    results = json.loads((out / "results.json").read_text())
    return LabRun(out, output, results)


def shared_quick_lab(root: Path) -> LabRun:
    """:func:`run_quick_lab` once for all the processes that share ``root``: the first to
    take the lock beside it runs the lab, the others wait and read what it wrote (its
    results, and what it printed). A failed run is not repeated: every waiter raises
    the same failure."""
    out, printed, failed = root / "quick-lab", root / "quick-lab.printed", root / "quick-lab.failed"
    with (root / "quick-lab.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if failed.exists():
            raise AssertionError(failed.read_text())
        if printed.exists():
            return LabRun(out, printed.read_text(), json.loads((out / "results.json").read_text()))
        try:
            run = run_quick_lab(out)
        except BaseException as exc:  # a timeout or an interrupt too: no waiter runs it again
            failed.write_text(f"the shared quick lab run failed: {type(exc).__name__}: {exc}")
            raise
        printed.write_text(run.output)
        return run
