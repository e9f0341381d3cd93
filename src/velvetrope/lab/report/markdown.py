"""``report.md``: the same report in Markdown, plots as ``plots/<name>.png`` beside it."""

from __future__ import annotations

from typing import Any

from velvetrope.lab.report.plots import PLOTS
from velvetrope.lab.report.text import (
    fifty_one_line,
    figure_cells,
    machine_line,
    run_line,
)

__all__ = ["claims_table", "render_markdown"]


def _cell_text(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def claims_table(results: dict[str, Any]) -> str:
    """The verdict table, as Markdown."""
    lines = [
        "| note | claimed | measured here | verdict |",
        "|---|---|---|---|",
    ]
    for claim in results["claims"]:
        claimed = (f"**{claim['row']}**: " if claim["row"] else "") + claim["claimed"]
        lines.append(
            f"| {claim['source']} | {_cell_text(claimed)} | {_cell_text(claim['measured'])} | "
            f"**{claim['verdict']}**: {_cell_text(claim['verdict_text'])} |"
        )
    return "\n".join(lines)


def render_markdown(results: dict[str, Any], plots: dict[str, bytes]) -> str:
    """The report."""
    noise = results["noise"]
    out = [
        "# velvetrope lab: the notes' claims, measured on this machine",
        "",
        run_line(results),
        "",
        f"Machine: {machine_line(results)}",
        "",
        f"Noise check: **{noise['verdict']}**: {noise['summary']}.",
        "",
        "## The notes' comparison, claim by claim",
        "",
        claims_table(results),
        "",
        fifty_one_line(results),
    ]
    for cell in results["cells"]:
        out += [
            "",
            f"## {cell['number']}. {cell['title']}",
            "",
            f"status: **{cell['status'].replace('_', ' ')}**, {cell['seconds']:.1f} s"
            + (f"; error: {cell['error']}" if cell["error"] else ""),
            "",
            "| figure | value | spread | detail |",
            "|---|---:|---|---|",
        ]
        for figure in cell["figures"]:
            out.append("| " + " | ".join(_cell_text(c) for c in figure_cells(figure)) + " |")
        out += ["", *cell["notes"]]
        for name, (owner, title, _draw) in PLOTS.items():
            if owner == cell["id"] and name in plots:
                out += ["", f"![{title}](plots/{name}.png)"]
    flagged = [r for r in noise["rounds"] if r["disturbed"]]
    if flagged:
        out += ["", "## Disturbed rounds", "", "| cell | round | why |", "|---|---|---|"]
        out += [f"| {r['cell']} | {r['label']} | {r['why']} |" for r in flagged]
    return "\n".join(out) + "\n"
