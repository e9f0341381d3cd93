"""The gateway benchmark: its report says what a reader needs, and ``--smoke`` still runs."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support.redis import REDIS_URL, require_redis
from tests.support.require import require

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gateway.py"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    name = "gateway_benchmark"
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]


def test_the_default_run_measures_mints_at_the_default_60_second_lifetime(
    bench: ModuleType,
) -> None:
    args = bench.parse_args([])
    assert args.ttl == 60
    assert args.mint_duration >= 120  # at least two lifetimes
    assert round(60 / (60 - bench.renew_before(60)), 2) == 1.09


@pytest.mark.parametrize("ttl", ["4", "601"])
def test_a_lifetime_the_gateway_would_refuse_is_refused(bench: ModuleType, ttl: str) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--ttl", ttl])


def test_the_command_line_is_recorded_as_a_shell_takes_it(bench: ModuleType) -> None:
    assert bench.command_line(["--ttl", "60", "--results", "my results"]) == (
        "python benchmarks/gateway.py --ttl 60 --results 'my results'"
    )


def _results(bench: ModuleType, edge: list[Any], service: list[Any]) -> dict[str, Any]:
    timing = {"p50_ms": 1.0, "p99_ms": 2.0, "max_ms": 3.0}
    throughput = {
        "gateway_rps": 1000.0,
        "direct_rps": 2000.0,
        "ratio": 0.5,
        "added_p50_ms": 1.0,
        "added_p99_ms": 2.0,
        "mints_per_session_per_minute": 5000.0,
    }
    return {
        "when": "2026-12-03 01:00 UTC",
        "command": "python benchmarks/gateway.py --ttl 60 --trials 3",
        "loadavg_at_start": [1.0, 1.0, 1.0],
        "nginx": "1.22.1",
        "sessions": 8,
        "connections": 16,
        "rounds": 3,
        "duration": 5.0,
        "ttl_seconds": 60.0,
        "cache_on": throughput,
        "cache_off": throughput,
        "mints": {
            "seconds": 240.0,
            "minted": 40,
            "mints_per_session_per_minute": 1.25,
            "mints_per_session_per_lifetime": 1.25,
            "floor_per_lifetime": 1.09,
        },
        "edge_trials": [t.after_send for t in edge],
        "edge_trials_node_a": [t.node_a for t in edge],
        "signout_edge": timing,
        "signout_service": timing,
        "signout_edge_after_204": timing,
        "signout_service_after_204": timing,
        "signout_edge_served": bench.served_after(edge),
        "signout_service_served": bench.served_after(service),
    }


def test_the_report_counts_tokens_served_after_the_sign_out_and_gives_the_command(
    bench: ModuleType,
) -> None:
    edge = [bench.SignOut(0.01, 0.005, served, node) for served, node in [(0, 0), (2, 1), (1, 0)]]
    service = [bench.SignOut(0.02, 0.01, 0, 1) for _ in range(3)]
    assert bench.served_after(edge) == {
        "trials": 3,
        "trials_with_a_200": 2,
        "total": 3,
        "max_in_one_trial": 2,
    }
    text = bench.report(_results(bench, edge, service))
    assert "back to back (target: none) | 3 in 2 of 3 trials (at most 2 in one)" in text
    assert "still accepted after the sign-out's 204 | none: the first request" in text
    assert "node 0 in 2 trials, node 1 in 1 trials" in text
    assert "per 60 s token lifetime" in text
    assert text.rstrip().endswith("Command: `python benchmarks/gateway.py --ttl 60 --trials 3`")


@pytest.mark.e2e
def test_the_gateway_benchmark_smoke_runs_end_to_end_and_writes_nothing(tmp_path: Path) -> None:
    require(shutil.which("wrk"), "wrk is not installed (apt-get install wrk)")
    require(shutil.which("nginx"), "nginx is not installed (apt-get install nginx)")
    require_redis()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--results", str(tmp_path)],
        env={**os.environ, "VELVETROPE_BENCH_REDIS_URL": REDIS_URL},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tokens served at the edge after the sign-out's 204" in done.stdout
    assert f"Command: `python benchmarks/gateway.py --smoke --results {tmp_path}`" in done.stdout
    assert list(tmp_path.iterdir()) == []
