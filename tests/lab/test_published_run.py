"""The full run published in ``docs/lab`` (and quoted in the README) is one this lab
version produces: valid against the shipped schema, every cell measured, its plots there."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from velvetrope.lab.matrix import CELLS
from velvetrope.lab.model import SCHEMA_VERSION, schema

DOCS = Path(__file__).resolve().parents[2] / "docs" / "lab"


def test_the_published_full_run_is_valid_and_complete() -> None:
    results = json.loads((DOCS / "results.json").read_text(encoding="utf-8"))
    assert results["schema_version"] == SCHEMA_VERSION
    assert results["mode"] == "full"
    jsonschema.Draft202012Validator(schema()).validate(results)
    assert [c["id"] for c in results["cells"]] == [c.id for c in CELLS]
    unmeasured = [
        (cell["id"], figure["key"], figure["reason"])
        for cell in results["cells"]
        for figure in cell["figures"]
        if figure["status"] != "measured"
    ]
    assert unmeasured == []
    report = (DOCS / "report.md").read_text(encoding="utf-8")
    for plot in sorted((DOCS / "plots").glob("*.png")):
        assert f"plots/{plot.name}" in report, plot.name


def test_the_readme_quotes_the_published_claims_table() -> None:
    report = (DOCS / "report.md").read_text(encoding="utf-8").splitlines()
    readme = (DOCS.parents[1] / "README.md").read_text(encoding="utf-8")
    start = report.index("| note | claimed | measured here | verdict |")
    rows = [line for line in report[start:] if line.startswith("| 0")]
    assert rows
    missing = [row[:80] for row in rows if row not in readme]
    assert missing == []
