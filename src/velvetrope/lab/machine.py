"""The machine a run measured on, and the noise check that flags disturbed rounds.

Every measured round of every cell runs inside :meth:`NoiseCheck.round`, which records

* a *baseline*: the time of a fixed CPU-bound task (hashing 2 MiB), taken just before
  the round. On a quiet machine it is constant; when other processes compete for the
  CPU, or the host steals cycles from this virtual machine, it grows. A round whose
  baseline is more than :data:`BASELINE_TOLERANCE` above the run's fastest is flagged;
* *steal*: the share of CPU time the hypervisor gave to others during the round
  (``/proc/stat``), flagged above :data:`STEAL_LIMIT`;
* *other load*: CPU time spent by processes that are neither this one nor its
  children (servers, wrk), from ``/proc/stat`` minus our own usage, flagged above
  :data:`OTHER_LIMIT` percent of one CPU.

The run's verdict is ``noisy`` when any round is flagged.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import resource
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["NoiseCheck", "Round", "describe_machine", "machine_busy"]

BASELINE_TOLERANCE = 0.25  # a baseline 25 % above the fastest: the CPU was shared
STEAL_LIMIT = 5.0  # percent of the round's CPU time stolen by the hypervisor
OTHER_LIMIT = 30.0  # percent of one CPU used by processes outside the lab
_BASELINE_BYTES = b"\x5a" * (2 * 1024 * 1024)
_TOOLS = {
    "wrk": ["wrk", "--version"],
    "nginx": ["nginx", "-v"],
    "redis-server": ["redis-server", "--version"],
    "pg_ctl": ["pg_ctl", "--version"],
    "chromium": ["chromium", "--version"],
}
_PACKAGES = ("velvetrope", "fastapi", "starlette", "uvicorn", "joserfc", "matplotlib", "playwright")


def _cpu_ticks() -> list[int] | None:
    """``cpu`` line of ``/proc/stat``: user nice system idle iowait irq softirq steal."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    return [int(x) for x in first[1:9]]


def machine_busy() -> float | None:
    """CPU seconds all processors have spent busy since boot (Linux ``/proc/stat``)."""
    ticks = _cpu_ticks()
    if ticks is None:
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _descendants_cpu(pid: int, depth: int = 0) -> float:
    if depth > 6:
        return 0.0
    return sum(_process_cpu(c) + _descendants_cpu(c, depth + 1) for c in _children(pid))


def _own_cpu() -> float:
    """CPU seconds of this process, its waited-for children and its live descendants
    (velvetrope nodes, wrk, redis-server, nginx, Chromium)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime + _descendants_cpu(os.getpid())


def _baseline_ms() -> float:
    started = time.perf_counter()
    for _ in range(4):
        hashlib.sha256(_BASELINE_BYTES).digest()
    return (time.perf_counter() - started) * 1000


@dataclass(slots=True)
class Round:
    """One measured round and what the noise check saw during it."""

    cell: str
    label: str
    baseline_ms: float
    seconds: float = 0.0
    steal_pct: float | None = None
    other_pct: float | None = None
    disturbed: bool = False
    why: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "cell": self.cell,
            "label": self.label,
            "seconds": round(self.seconds, 3),
            "baseline_ms": round(self.baseline_ms, 4),
            "steal_pct": None if self.steal_pct is None else round(self.steal_pct, 2),
            "other_pct": None if self.other_pct is None else round(self.other_pct, 1),
            "disturbed": self.disturbed,
            "why": self.why,
        }


@dataclass(slots=True)
class NoiseCheck:
    """Collects the rounds of a run and judges them (see the module docstring).

    ``servers_cpu`` holds callables that return the CPU seconds used so far by servers the
    lab started that are not its descendants (PostgreSQL daemonizes), so they are not
    counted as other load.
    """

    rounds: list[Round] = field(default_factory=list)
    servers_cpu: list[Callable[[], float]] = field(default_factory=list)

    def _ours(self) -> float:
        return _own_cpu() + sum(f() for f in self.servers_cpu)

    @contextlib.contextmanager
    def round(self, cell: str, label: str) -> Iterator[Round]:
        """Measure one round inside this block."""
        record = Round(cell, label, _baseline_ms())
        ticks_before, ours_before = _cpu_ticks(), self._ours()
        started = time.monotonic()
        try:
            yield record
        finally:
            record.seconds = time.monotonic() - started
            ticks_after, ours_after = _cpu_ticks(), self._ours()
            if ticks_before and ticks_after and record.seconds > 0:
                delta = [a - b for a, b in zip(ticks_after, ticks_before, strict=True)]
                total = sum(delta) or 1
                record.steal_pct = 100 * delta[7] / total
                busy = (total - delta[3] - delta[4]) / os.sysconf("SC_CLK_TCK")
                record.other_pct = max(
                    0.0, 100 * (busy - (ours_after - ours_before)) / record.seconds
                )
            self.rounds.append(record)

    def judge(self) -> dict[str, Any]:
        """Flag disturbed rounds; the JSON form of the check."""
        fastest = min((r.baseline_ms for r in self.rounds), default=None)
        for r in self.rounds:
            why = []
            if fastest and r.baseline_ms > fastest * (1 + BASELINE_TOLERANCE):
                why.append(f"baseline {r.baseline_ms / fastest:.2f}x the fastest")
            if r.steal_pct is not None and r.steal_pct > STEAL_LIMIT:
                why.append(f"{r.steal_pct:.1f}% CPU stolen")
            if r.other_pct is not None and r.other_pct > OTHER_LIMIT:
                why.append(f"other processes used {r.other_pct:.0f}% of a CPU")
            r.disturbed, r.why = bool(why), "; ".join(why) or None
        disturbed = sum(r.disturbed for r in self.rounds)
        drift = (
            max(r.baseline_ms for r in self.rounds) / fastest if fastest and self.rounds else None
        )
        verdict = "unknown" if not self.rounds else ("noisy" if disturbed else "quiet")
        summary = (
            "no measured rounds"
            if not self.rounds
            else f"{disturbed} of {len(self.rounds)} rounds disturbed; the baseline task's "
            f"time varied {drift:.2f}x between rounds (tolerance "
            f"{1 + BASELINE_TOLERANCE:.2f}x, steal {STEAL_LIMIT:.0f}%, other load "
            f"{OTHER_LIMIT:.0f}% of a CPU)"
        )
        return {
            "rounds": [r.to_json() for r in self.rounds],
            "disturbed": disturbed,
            "baseline_drift": None if drift is None else round(drift, 3),
            "verdict": verdict,
            "summary": summary,
        }


def _tool_version(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        text = (done.stdout + done.stderr).strip().splitlines()
        return text[0][:120] if text else "installed"
    return "installed"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_bytes() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return None


def _package(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def describe_machine() -> dict[str, Any]:
    """CPUs, memory, OS, Python, the tools and package versions the run used."""
    load = None
    with contextlib.suppress(OSError):
        load = [round(x, 2) for x in os.getloadavg()]
    return {
        "cpus": os.cpu_count() or 1,
        "cpu_model": _cpu_model(),
        "memory_bytes": _memory_bytes(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "load_average": load,
        "tools": {name: _tool_version(argv) for name, argv in _TOOLS.items()},
        "packages": {name: _package(name) for name in _PACKAGES},
    }
