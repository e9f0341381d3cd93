"""``report.html``: one self-contained page (inline CSS, plots as PNG data URIs, no
script, nothing fetched)."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from velvetrope.lab.report.plots import PLOTS
from velvetrope.lab.report.text import (
    fifty_one_line,
    figure_cells,
    machine_line,
    run_line,
)

__all__ = ["render_html"]

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;margin:.8em 0;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;white-space:nowrap}
.v-holds{background:#e7f5e9}.v-does-not-hold{background:#fbe4e4}
.v-holds-only-when{background:#fff5d6}.v-not-measured,.v-not-a-measurable-claim{background:#eee}
.na{color:#777}.big{font-size:1.1em;padding:.6em;background:#f0f4fb;border-left:4px solid #4c72b0}
figure{margin:1em 0}img{max-width:100%;height:auto;border:1px solid #eee}
.noisy{color:#a33}
"""


def _img(name: str, title: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img class="plot" id="plot-{name}" alt="{escape(title)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{escape(title)}</figcaption></figure>'
    )


def _claims(results: dict[str, Any]) -> str:
    rows = []
    for claim in results["claims"]:
        css = "v-" + claim["verdict"].replace(" ", "-")
        where = claim["row"] or ""
        rows.append(
            f"<tr class='{css}'><td>{escape(claim['source'])}</td><td>{escape(where)}</td>"
            f"<td>{escape(claim['claimed'])}</td><td>{escape(claim['measured'])}</td>"
            f"<td><b>{escape(claim['verdict'])}</b>: {escape(claim['verdict_text'])}</td></tr>"
        )
    return (
        "<table id='claims'><tr><th>note</th><th>row</th><th>claimed</th>"
        "<th>measured here</th><th>verdict</th></tr>" + "".join(rows) + "</table>"
    )


def _cell(cell: dict[str, Any], plots: dict[str, bytes]) -> str:
    rows = []
    for figure in cell["figures"]:
        label, value, spread, detail = figure_cells(figure)
        css = "" if figure["status"] == "measured" else " class='na'"
        rows.append(
            f"<tr{css}><td>{escape(label)}</td><td class='num'>{escape(value)}</td>"
            f"<td>{escape(spread)}</td><td>{escape(detail)}</td></tr>"
        )
    parts = [
        f"<h2 id='cell-{cell['id']}'>{cell['number']}. {escape(cell['title'])}</h2>",
        f"<p>status: <b>{cell['status'].replace('_', ' ')}</b>, {cell['seconds']:.1f} s"
        + (f"; <span class='noisy'>error: {escape(cell['error'])}</span>" if cell["error"] else "")
        + "</p>",
        "<table><tr><th>figure</th><th>value</th><th>spread</th><th>detail</th></tr>"
        + "".join(rows)
        + "</table>",
    ]
    parts += [f"<p>{escape(note)}</p>" for note in cell["notes"]]
    for name, (owner, title, _draw) in PLOTS.items():
        if owner == cell["id"] and name in plots:
            parts.append(_img(name, title, plots[name]))
    return "\n".join(parts)


def _noise(results: dict[str, Any]) -> str:
    noise = results["noise"]
    flagged = [r for r in noise["rounds"] if r["disturbed"]]
    rows = "".join(
        f"<tr><td>{escape(r['cell'])}</td><td>{escape(r['label'])}</td>"
        f"<td>{escape(r['why'] or '')}</td></tr>"
        for r in flagged
    )
    table = (
        "<table><tr><th>cell</th><th>round</th><th>why flagged</th></tr>" + rows + "</table>"
        if flagged
        else ""
    )
    return "<h2 id='noise'>Disturbed rounds</h2>" + table if table else ""


def _noise_line(results: dict[str, Any]) -> str:
    noise = results["noise"]
    css = "noisy" if noise["verdict"] == "noisy" else ""
    return (
        f"<p class='{css}'>Noise check: <b>{noise['verdict']}</b>: {escape(noise['summary'])} "
        "(disturbed rounds are listed at the end).</p>"
    )


def render_html(results: dict[str, Any], plots: dict[str, bytes]) -> str:
    """The page."""
    cells = "\n".join(_cell(cell, plots) for cell in results["cells"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>velvetrope lab report</title><style>{STYLE}</style></head>
<body>
<h1>velvetrope lab: the notes' claims, measured on this machine</h1>
<p>{escape(run_line(results))}</p>
<p>Machine: {escape(machine_line(results))}</p>
{_noise_line(results)}
<h2 id="claims-table">The notes' comparison, claim by claim</h2>
<p>Claims quoted as written in the research notes (000, 002, 003, 004); verdicts computed
from this run's figures.</p>
{_claims(results)}
<p class="big" id="fifty-one">{escape(fifty_one_line(results))}</p>
{cells}
{_noise(results)}
</body></html>
"""
