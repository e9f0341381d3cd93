"""wrk: run it against a loopback URL for a fixed time and parse what it reports.

Shared by ``velvetrope lab`` and ``benchmarks/run.py``. Every run is bounded: wrk's own
``--duration``, plus a grace period after which it is killed.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

__all__ = ["ROTATION_SCRIPT", "WrkOutputError", "WrkResult", "parse_wrk", "run_wrk"]

ROTATION_SCRIPT: Final = Path(str(resources.files("velvetrope.lab") / "data/rotating_bearer.lua"))
GRACE: Final = 30.0  # seconds wrk may run past its --duration before it is killed


class WrkOutputError(ValueError):
    """wrk printed something this parser does not understand, or failed."""


@dataclass(frozen=True, slots=True)
class WrkResult:
    """What one wrk run reported. Times are in milliseconds."""

    endpoint: str
    requests: int
    seconds: float
    rps: float
    latency_avg_ms: float
    latency_stdev_ms: float
    latency_max_ms: float
    latency_p50_ms: float
    latency_p75_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    non_2xx: int
    socket_errors: dict[str, int]
    server_cpu_us_per_request: float | None = None
    # Percent of one CPU over the run: the server (100 = it saturates its core), wrk,
    # and everything else on the machine (noise: other processes, this script).
    server_cpu_pct: float | None = None
    wrk_cpu_pct: float | None = None
    other_cpu_pct: float | None = None


_UNIT_MS: Final = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TIME: Final = r"([\d.]+)(us|ms|s|m|h)"


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNIT_MS[unit]


def _search(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text, flags=re.MULTILINE)
    if match is None:
        raise WrkOutputError(f"unexpected wrk output (no match for {pattern!r}):\n{text}")
    return match


def parse_wrk(endpoint: str, text: str) -> WrkResult:
    """Parse the report ``wrk --latency`` prints."""
    done = _search(rf"^\s*(\d+) requests in {_TIME}", text)
    latency = _search(rf"^\s*Latency\s+{_TIME}\s+{_TIME}\s+{_TIME}", text)
    percentile = {p: _ms(*_search(rf"^\s*{p}%\s+{_TIME}", text).groups()) for p in (50, 75, 90, 99)}
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    return WrkResult(
        endpoint=endpoint,
        requests=int(done.group(1)),
        seconds=_ms(done.group(2), done.group(3)) / 1000.0,
        rps=float(_search(r"^Requests/sec:\s*([\d.]+)", text).group(1)),
        latency_avg_ms=_ms(latency.group(1), latency.group(2)),
        latency_stdev_ms=_ms(latency.group(3), latency.group(4)),
        latency_max_ms=_ms(latency.group(5), latency.group(6)),
        latency_p50_ms=percentile[50],
        latency_p75_ms=percentile[75],
        latency_p90_ms=percentile[90],
        latency_p99_ms=percentile[99],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=dict(
            zip(
                ("connect", "read", "write", "timeout"),
                (int(n) for n in errors.groups()) if errors else (0, 0, 0, 0),
                strict=True,
            )
        ),
    )


def run_wrk(
    url: str,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    headers: Mapping[str, str] | None = None,
    script: Sequence[str] = (),
) -> tuple[WrkResult, str]:
    """Run wrk against ``url`` (loopback only) for ``seconds``; return its report and output.

    ``script`` is ``[lua_path, "--", args...]`` for a wrk script, or empty.

    Raises:
        WrkOutputError: wrk failed, timed out or printed an unexpected report.
    """
    if not url.startswith(("http://127.0.0.1:", "http://[::1]:")):
        raise WrkOutputError(f"refusing to load anything but loopback: {url}")
    duration = max(1, round(seconds))
    command = [
        "wrk",
        f"--threads={min(threads, connections)}",
        f"--connections={connections}",
        f"--duration={duration}s",
        "--timeout=5s",
        "--latency",
        *(f"--header={k}: {v}" for k, v in (headers or {}).items()),
    ]
    if script:
        command += [f"--script={script[0]}", url, *script[1:]]
    else:
        command.append(url)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration + GRACE, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise WrkOutputError(f"wrk did not finish within {duration + GRACE:.0f} s") from exc
    if done.returncode != 0:
        raise WrkOutputError(f"wrk exited with {done.returncode}: {done.stderr.strip()[:200]}")
    return parse_wrk(url, done.stdout), done.stdout
