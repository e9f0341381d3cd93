"""Across cores: how throughput scales from one worker process to two.

``velvetrope serve --workers N`` on SQLite (the embedded default), for N = 1 and 2 in
interleaved rounds (a fresh database and server each time), and wrk against
``GET /auth/me`` (protected, the same handler for every way in) with a session cookie
and with a bearer access token (a warm JWT). Prints req/s per worker count and the
2-worker/1-worker ratio per way in (the median of the rounds' ratios; target 1.6 on a
2-CPU machine), and writes ``benchmarks/results/workers.json``.

wrk runs on the same machine (2 threads), so on 2 CPUs the two workers and wrk share
them: the ratio is what an operator on such a box gets, not the ideal 2.0.

Usage::

    .venv/bin/python benchmarks/workers.py [--duration 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

import run

TARGET: Final = 1.6
PATH: Final = "/auth/me"
WAYS: Final = ("session", "jwt")


def serve(scratch: Path, workers: int) -> tuple[run.Server, subprocess.Popen[bytes]]:
    """Start ``velvetrope serve --workers`` on a new SQLite file; wait for ``/health``."""
    port = run.free_port()
    database = f"sqlite:///{scratch / f'vr-{workers}.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VELVETROPE_")}
    env.update(
        VELVETROPE_PASSWORD_HASH_PROFILE="owasp-minimum",  # sign-ins are setup here
        VELVETROPE_ACCESS_TOKEN_TTL="PT1H",  # outlives every run
        VELVETROPE_LOG_LEVEL="warning",
    )
    velvetrope = shutil.which("velvetrope", path=str(Path(sys.executable).parent))
    if velvetrope is None:
        raise run.BenchError("the velvetrope command is not installed next to this Python")
    command = [velvetrope, "serve", "--host", run.HOST, "--port", str(port)]
    command += ["--database", database, "--workers", str(workers)]
    log = scratch / f"serve-{workers}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = run.Server(port, proc.pid, scratch, database)
    try:
        run.wait_until_healthy(server, proc, log)
    except BaseException:
        run.stop(proc)
        raise
    return server, proc


def wrk(server: run.Server, headers: dict[str, str], duration: int) -> dict[str, float]:
    """One wrk run against ``GET /auth/me`` (2 threads, 32 connections); all 2xx."""
    command = ["wrk", "--threads=2", "--connections=32", f"--duration={duration}s"]
    command += ["--timeout=5s", "--latency", *(f"--header={k}: {v}" for k, v in headers.items())]
    done = subprocess.run(
        [*command, server.url(PATH)],
        capture_output=True,
        text=True,
        timeout=duration + run.WRK_GRACE,
        check=False,
    )
    if done.returncode != 0:
        raise run.BenchError(f"wrk exited with {done.returncode}: {done.stderr.strip()}")
    result = run.parse_wrk("me", done.stdout)
    if result.requests == 0 or result.non_2xx:
        raise run.BenchError(f"{result.non_2xx} of {result.requests} responses were not 2xx")
    return {"rps": result.rps, "p50_ms": result.latency_p50_ms, "p99_ms": result.latency_p99_ms}


def one_round(workers: int, duration: int) -> dict[str, dict[str, float]]:
    """Start a server with ``workers`` processes and load it with every way in."""
    with tempfile.TemporaryDirectory(prefix="velvetrope-workers-") as scratch:
        server, proc = serve(Path(scratch), workers)
        try:
            credentials = {
                "session": run.session_cookie(server).headers,
                "jwt": {"Authorization": f"Bearer {run.access_token(server)}"},
            }
            for way, headers in credentials.items():
                reply = server.request("GET", PATH, headers=headers)
                if reply.status != 200:
                    raise run.BenchError(f"{way}: {PATH} answered {reply.status}")
            return {way: wrk(server, headers, duration) for way, headers in credentials.items()}
        finally:
            run.stop(proc)


def measure(duration: int, rounds: int) -> dict[str, Any]:
    runs: dict[int, list[dict[str, dict[str, float]]]] = {1: [], 2: []}
    for index in range(rounds):
        for workers in (1, 2) if index % 2 == 0 else (2, 1):
            runs[workers].append(one_round(workers, duration))
            run.say(f"round {index + 1}/{rounds}, {workers} worker(s): {runs[workers][-1]}")
    ways: dict[str, Any] = {}
    for way in WAYS:
        ratios = [
            two[way]["rps"] / one[way]["rps"] for one, two in zip(runs[1], runs[2], strict=True)
        ]
        ways[way] = {
            "rps_1": statistics.median(r[way]["rps"] for r in runs[1]),
            "rps_2": statistics.median(r[way]["rps"] for r in runs[2]),
            "p99_ms_1": statistics.median(r[way]["p99_ms"] for r in runs[1]),
            "p99_ms_2": statistics.median(r[way]["p99_ms"] for r in runs[2]),
            "ratio": statistics.median(ratios),
            "ratios": ratios,
        }
    return {"path": PATH, "duration_s": duration, "rounds": rounds, "ways": ways, "runs": runs}


def table(result: dict[str, Any]) -> str:
    lines = [
        f"velvetrope serve --workers 1 and 2 on SQLite; wrk -t2 -c32 on GET {PATH}",
        "",
        "| way in | 1 worker req/s (p99 ms) | 2 workers req/s (p99 ms) | 2 / 1 |",
        "|---|---:|---:|---:|",
    ]
    for way, row in result["ways"].items():
        mark = "" if row["ratio"] >= TARGET else f" (below {TARGET})"
        lines.append(
            f"| {way} | {row['rps_1']:,.0f} ({row['p99_ms_1']:.1f}) | "
            f"{row['rps_2']:,.0f} ({row['p99_ms_2']:.1f}) | {row['ratio']:.2f}{mark} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=run._bounded(1, 120), default=10)
    parser.add_argument("--rounds", type=run._bounded(1, 9), default=2)
    parser.add_argument("--results", type=Path, default=run.RESULTS_DIR)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        run.say("wrk is not installed (apt-get install wrk)")
        return 1
    loadavg = os.getloadavg()
    try:
        result = measure(args.duration, args.rounds)
    except (run.BenchError, OSError) as exc:
        run.say(f"workers benchmark failed: {exc}")
        return 1
    run.publish(
        result,
        script="workers",
        argv=argv or sys.argv[1:],
        text=table(result),
        results=args.results,
        loadavg=loadavg,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
