"""The soak with faults, short form (RES-03): about 30 seconds of mixed traffic over three
``velvetrope serve`` nodes while Redis, PostgreSQL and one node are killed and restarted
(the long form: ``python -m tests.e2e.soak --minutes 10``; see :mod:`tests.e2e.soak`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.soak import run_soak

pytestmark = pytest.mark.e2e

SECONDS = 30.0
MIN_REQUESTS = 150  # a busy shared machine (load 16 on 2 cores) still sends ~600


def test_RES_03_a_short_soak_with_faults_lets_nothing_through_and_loses_nothing(
    tmp_path: Path,
) -> None:
    figures = run_soak(SECONDS, tmp_path, down=2.0)
    print("\n" + figures.report(f"soak: {SECONDS:g} s, 3 nodes on PostgreSQL + Redis"))
    assert figures.sent > MIN_REQUESTS, "too little traffic to mean anything"
    assert sum(figures.checked.values()) > 10
    assert len(figures.recovery) == 3
    assert not figures.failures, "\n".join(figures.failures)
