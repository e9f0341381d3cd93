"""Rendering a run: ``report.html`` (self-contained, plots as PNG data URIs),
``report.md`` (plots as PNG files beside it, in ``plots/``), from the results alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from velvetrope.lab.report.html import render_html
from velvetrope.lab.report.markdown import render_markdown
from velvetrope.lab.report.plots import PLOTS

__all__ = ["draw_plots", "write_reports"]


def draw_plots(results: dict[str, Any]) -> dict[str, bytes]:
    """Every plot the run has data for, as PNG bytes by name."""
    drawn = {}
    for name, (_cell, _title, draw) in PLOTS.items():
        png = draw(results)
        if png is not None:
            drawn[name] = png
    return drawn


def write_reports(results: dict[str, Any], out: Path) -> None:
    """Write ``report.html``, ``report.md`` and ``plots/*.png`` into ``out``; the plots of
    an earlier run in ``out`` are removed first, so ``plots/`` holds this run's only."""
    plots = draw_plots(results)
    folder = out / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    for name, png in plots.items():
        (folder / f"{name}.png").write_bytes(png)
    (out / "report.html").write_text(render_html(results, plots), encoding="utf-8")
    (out / "report.md").write_text(render_markdown(results, plots), encoding="utf-8")
