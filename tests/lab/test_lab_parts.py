"""The lab's parts without a run: the command line, feature detection, the noise check,
timing statistics and the matrix."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from velvetrope.cli import app
from velvetrope.lab import features
from velvetrope.lab.cells.loop import Rotation, cold_unless_cached, wrk_command
from velvetrope.lab.features import NotLanded
from velvetrope.lab.machine import NoiseCheck, Round
from velvetrope.lab.matrix import CELLS, select
from velvetrope.lab.model import Figure, stats_of
from velvetrope.lab.report import write_reports
from velvetrope.lab.runner import prepare_out
from velvetrope.lab.servers import Client, worker_args
from velvetrope.lab.wrk import WrkOutputError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "lab"


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


def test_device_binding_and_dpop_are_detected_where_they_landed() -> None:
    assert importlib.util.find_spec("velvetrope.core.binding.dbsc") is not None
    assert features.dbsc().available, features.dbsc().reason
    assert features.dpop().available, features.dpop().reason


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


def test_successive_cold_rounds_start_where_the_last_one_stopped(tmp_path: Path) -> None:
    rotation = Rotation(tmp_path / "tokens.txt", count=30_000)
    starts = []
    for sent in (9_400, 9_350, 9_500):
        command = wrk_command("http://127.0.0.1:1/bench/guarded", {}, 4, rotation)
        starts.append(int(command[command.index("--") + 2]))
        rotation.advance(f"Requests/sec: 1\nrotating_bearer: next {starts[-1] + sent}\n", sent)
    assert starts == [0, 9_400, 18_750]
    assert rotation.cursor == 28_250


def test_a_cold_round_that_does_not_say_how_far_it_got_is_refused(tmp_path: Path) -> None:
    rotation = Rotation(tmp_path / "tokens.txt", count=30_000, cursor=100)
    with pytest.raises(WrkOutputError, match="how far"):
        rotation.advance("rotating_bearer: next 150\n", 200)
    with pytest.raises(WrkOutputError, match="how far"):
        rotation.advance("Requests/sec: 1\n", 200)
    rotation.advance("rotating_bearer: next 30100\n", 200)
    assert rotation.cursor == 100, "wraps around the file"


@pytest.mark.parametrize("where", ["a-file", "a-file/below", "/proc/velvetrope-lab"])
def test_an_out_that_cannot_be_written_is_refused_before_measuring(
    tmp_path: Path, where: str
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    target = where if where.startswith("/") else str(tmp_path / where)
    done = CliRunner().invoke(app, ["lab", "--quick", "--only", "wire", "--out", target])
    assert done.exit_code == 2, done.output
    assert done.output.startswith("error: --out ")
    assert "Traceback" not in done.output
    assert "cell 1 wire" not in done.output, "nothing was measured"


def test_a_writable_out_is_created_and_left_clean(tmp_path: Path) -> None:
    out = tmp_path / "new" / "results"
    prepare_out(out)
    assert out.is_dir()
    assert list(out.iterdir()) == []


def test_plots_of_an_earlier_run_are_removed(tmp_path: Path) -> None:
    results = json.loads((DOCS / "results.json").read_text(encoding="utf-8"))
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "gone.png").write_bytes(b"old")
    write_reports(results, tmp_path)
    drawn = {p.name for p in (tmp_path / "plots").glob("*.png")}
    assert "gone.png" not in drawn
    assert drawn


def test_a_cold_round_the_token_cache_answered_is_not_reported_as_cold() -> None:
    figure = Figure("probe.jwt-cold", "cheap endpoint p99", "ms", value=4.2)
    assert cold_unless_cached(figure, hits=0, requests=9_400) is figure
    cached = cold_unless_cached(figure, hits=9_400, requests=18_800)
    assert not cached.measured
    assert cached.reason == "9,400 of 18,800 cold-token requests were token-cache hits"
