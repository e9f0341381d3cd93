"""The benchmark runner still works end to end (wrk against a real server, 1 s per endpoint)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.postgres import ADMIN_URL
from tests.support.redis import REDIS_URL
from tests.support.require import missing, require

STORE_DOWN = re.compile(r"^inprocess\.py: (redis|postgres): ", re.MULTILINE)
IN_PROCESS_CASES = (
    *("memory", "sqlite", "redis", "postgres"),
    *("jwt-warm", "jwt-cookie"),
    *("jwt-cold", "jwt-cold-es256", "jwt-cold-rs256", "jwt-cold-hs256"),
)

pytestmark = pytest.mark.e2e


def test_benchmark_smoke_checks_every_endpoint_and_credential() -> None:
    require(shutil.which("wrk"), "wrk is not installed (apt-get install wrk; .ci/run installs it)")
    run = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
    done = subprocess.run(
        [sys.executable, str(run), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,  # five cases, on a machine that may be busy
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_in_process_benchmark_checks_every_endpoint_and_credential() -> None:
    """``benchmarks/inprocess.py --smoke``: every case's endpoints answer 200 with the
    credential and the checked ones 401 without, through the app itself."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "inprocess.py"
    # The suite's own servers: a key prefix and a database of the run's own, removed after.
    stores = {"VELVETROPE_BENCH_REDIS_URL": REDIS_URL, "VELVETROPE_BENCH_POSTGRES_URL": ADMIN_URL}
    done = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **stores},
    )
    if done.returncode == 2 and STORE_DOWN.search(done.stderr):  # what inprocess.py says then
        missing(done.stderr.strip())
    assert done.returncode == 0, done.stdout + done.stderr
    for case in IN_PROCESS_CASES:
        assert f"| {case} |" in done.stdout
