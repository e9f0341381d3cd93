"""The lab's parts without a run: the command line, feature detection, the noise check,
timing statistics and the matrix."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

from velvetrope.cli import app
from velvetrope.lab import features
from velvetrope.lab.features import NotLanded
from velvetrope.lab.machine import NoiseCheck, Round
from velvetrope.lab.matrix import CELLS, select
from velvetrope.lab.model import stats_of
from velvetrope.lab.servers import Client, worker_args


def test_an_unknown_cell_is_refused_with_the_list() -> None:
    done = CliRunner().invoke(app, ["lab", "--only", "wire,nope"])
    assert done.exit_code == 2
    assert "unknown cell nope" in done.output
    assert "footprint" in done.output


def test_without_the_extra_the_command_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name)
    )
    done = CliRunner().invoke(app, ["lab", "--quick"])
    assert done.exit_code == 1
    assert "pip install 'velvetrope[lab]'" in done.output
    assert done.output.count(".") <= 2, "one sentence"


def test_the_matrix_has_the_nine_cells_of_the_issue_in_order() -> None:
    assert [c.number for c in CELLS] == list(range(1, 10))
    assert [c.id for c in select(["9", "wire"])] == ["wire", "theft"]


def test_features_that_have_not_landed_are_detected_with_a_reason() -> None:
    for detect in (features.gateway, features.dpop, features.dbsc, features.workers):
        found = detect()
        assert found.available or "has not landed" in found.reason
    assert worker_args(1) == []
    if not features.workers().available:
        with pytest.raises(NotLanded, match="has not landed"):
            worker_args(2)


def test_a_missing_tool_is_named_with_how_to_install_it() -> None:
    found = features.tool("no-such-tool-velvetrope", "apt-get install it")
    assert not found.available
    assert found.reason == "no-such-tool-velvetrope is not installed (apt-get install it)"


def test_the_noise_check_flags_a_round_whose_baseline_drifted() -> None:
    noise = NoiseCheck()
    noise.rounds += [
        Round("c", "quiet", baseline_ms=5.0, steal_pct=0.0, other_pct=0.0),
        Round("c", "busy", baseline_ms=9.0, steal_pct=0.0, other_pct=0.0),
        Round("c", "stolen", baseline_ms=5.1, steal_pct=12.0, other_pct=0.0),
    ]
    judged = noise.judge()
    assert judged["verdict"] == "noisy"
    assert [r["disturbed"] for r in judged["rounds"]] == [False, True, True]
    assert "1.80x" in judged["rounds"][1]["why"]
    assert "stolen" in judged["rounds"][2]["why"]


def test_a_real_round_is_recorded() -> None:
    noise = NoiseCheck()
    with noise.round("c", "r1"):
        sum(range(10_000))
    assert noise.rounds[0].baseline_ms > 0
    assert noise.judge()["verdict"] in ("quiet", "noisy")


def test_stats_give_percentiles_and_the_spread_of_round_medians() -> None:
    stats = stats_of([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]])
    assert stats.p50 == 3.0
    assert stats.p99 == 30.0
    assert stats.spread == (2.0, 20.0)
    assert stats.samples == 6


def test_the_client_talks_to_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        Client("http://192.0.2.1:80")
