"""The soak with faults, short form (RES-03): about 40 seconds of mixed traffic over three
``velvetrope serve`` nodes while Redis, PostgreSQL and one node are killed and restarted
(the long form: ``python -m tests.e2e.soak --minutes 10``; see :mod:`tests.e2e.soak`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.soak import run_soak

pytestmark = pytest.mark.e2e

SECONDS = 36.0


def test_RES_03_a_short_soak_with_faults_lets_nothing_through_and_loses_nothing(
    tmp_path: Path,
) -> None:
    figures = run_soak(SECONDS, tmp_path, down=2.0)
    print("\n" + figures.report(f"soak: {SECONDS:g} s, 3 nodes on PostgreSQL + Redis"))
    assert figures.sent > 500, "too little traffic to mean anything"
    assert sum(figures.checked.values()) > 20
    assert len(figures.recovery) == 3
    assert not figures.failures, "\n".join(figures.failures)
