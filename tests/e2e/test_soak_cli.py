"""The long soak's command line (``python -m tests.e2e.soak``): bad durations are
refused with one sentence, and the figures are written under ``benchmarks/results``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e import soak


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--minutes", "-1"], "must be more than 0 and at most 1440 minutes, not -1"),
        (["--minutes", "0"], "must be more than 0"),
        (["--minutes", "nan"], "must be more than 0"),
        (["--minutes", "ten"], "'ten' is not a number of minutes"),
        (["--down", "-3"], "must be more than 0 and at most 60 seconds"),
    ],
)
def test_RES_03_a_bad_duration_is_refused_with_one_sentence(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        soak.main([*argv, "--no-results"])  # refused before any server starts
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err


def test_RES_03_the_figures_are_written_as_json_and_markdown(tmp_path: Path) -> None:
    figures = soak.Figures(
        sent=12,
        answers=Counter({(200, ""): 10, (503, "store_unavailable"): 1, (0, ""): 1}),
        recovery={"redis": 0.4512},
    )
    figures.checked["users"] = 3
    results = soak.results_of(figures, minutes=10, down=3)
    report = figures.report("soak: 10 min")
    json_path, md_path = soak.write_results(results, report, tmp_path / "results")
    written = json.loads(json_path.read_text())
    assert written["requests_sent"] == 12
    assert written["answers"] == {
        "no answer -": 1,
        "200 -": 10,
        "503 store_unavailable": 1,
    }
    assert (written["let_through"], written["after_revocation_beyond_bound"]) == (0, 0)
    assert written["lost"] == {"users": 0, "sessions": 0, "families": 0}
    assert written["recovery_s"] == {"redis": 0.451}
    assert written["command"] == "python -m tests.e2e.soak --minutes 10 --down 3"
    assert "requests sent: 12" in md_path.read_text()
    assert Path(soak.__file__).parents[2] / "benchmarks" / "results" == soak.RESULTS
