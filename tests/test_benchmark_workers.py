"""The workers benchmark still runs end to end: one and two worker processes, both ways in."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.require import require

pytestmark = pytest.mark.e2e


def test_workers_benchmark_short_form_measures_both_ways_in(tmp_path: Path) -> None:
    require(shutil.which("wrk"), "wrk is not installed (apt-get install wrk)")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "workers.py"
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            "--duration",
            "1",
            "--rounds",
            "1",
            "--results",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "workers.json").read_text())
    for way in ("session", "jwt"):
        row = result["ways"][way]
        assert row["rps_1"] > 0
        assert row["rps_2"] > 0
        assert row["ratio"] == row["rps_2"] / row["rps_1"]
    assert "| jwt |" in done.stdout
