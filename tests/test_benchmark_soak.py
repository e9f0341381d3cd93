"""The memory soak still runs end to end: mixed traffic against a real server, no 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_PERF_04_soak_short_form_runs_mixed_traffic_and_reports_rss() -> None:
    soak = Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"
    short = ["--seconds", "10", "--sample", "2", "--workers", "4", "--quick", "--no-results"]
    done = subprocess.run(
        [sys.executable, str(soak), *short],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RSS after" in done.stdout
    assert "server errors: none" in done.stdout
    assert '"verified_tokens"' in done.stdout  # /ready's caches, reported at the end
