"""The report's plots (matplotlib, Agg backend), drawn from ``results.json`` alone.

Each function takes the results and returns PNG bytes, or ``None`` when the run has no
measured figure for it (the report then says why). Not-available figures are never
drawn as zero.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure as Canvas

__all__ = ["PLOTS"]

Results = dict[str, Any]
COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")


def _cell(results: Results, cell: str) -> dict[str, Any] | None:
    return next((c for c in results["cells"] if c["id"] == cell), None)


def _measured(results: Results, cell: str) -> dict[str, dict[str, Any]]:
    found = _cell(results, cell)
    if found is None:
        return {}
    return {f["key"]: f for f in found["figures"] if f["status"] == "measured"}


def _png(canvas: Canvas) -> bytes:
    buffer = io.BytesIO()
    canvas.tight_layout()
    canvas.savefig(buffer, format="png", dpi=110)
    plt.close(canvas)
    return buffer.getvalue()


def _bars(ax: Axes, labels: list[str], values: list[float], color: str = COLORS[0]) -> None:
    bars = ax.barh(labels, values, color=color)
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=3, fontsize=8)
    ax.invert_yaxis()


def wire(results: Results) -> bytes | None:
    """Bytes per request per way in."""
    figures = _measured(results, "wire")
    keys = ["session.request"] + [f"jwt.{a}.request" for a in ("HS256", "EdDSA", "ES256", "RS256")]
    keys.append("jwt.EdDSA.claims.request")
    shown = [(figures[k]["label"], figures[k]["value"]) for k in keys if k in figures]
    if not shown:
        return None
    canvas, ax = plt.subplots(figsize=(8, 3.4))
    _bars(ax, [s[0] for s in shown], [s[1] for s in shown])
    ax.set_xlabel("bytes per request (header line)")
    ax.set_title("Bytes on the wire per way in")
    return _png(canvas)


def verify(results: Results) -> bytes | None:
    """p50 (bar) and p99 (tick) of each check, log scale."""
    figures = _measured(results, "verify")
    if not figures:
        return None
    keys = sorted(figures, key=lambda k: (not k.startswith("session"), k))
    labels = [figures[k]["label"] for k in keys]
    p50 = [figures[k]["value"] for k in keys]
    p99 = [figures[k]["extra"].get("p99", figures[k]["value"]) for k in keys]
    canvas, ax = plt.subplots(figsize=(8, 0.28 * len(keys) + 1.4))
    colors = [COLORS[0] if k.startswith("session") else COLORS[1] for k in keys]
    ax.barh(labels, p50, color=colors)
    ax.scatter(p99, labels, marker="|", s=120, color="black", label="p99")
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("µs per check (bar: p50, tick: p99; log scale)")
    ax.set_title("Verification cost: session lookups (blue) and JWT checks (orange)")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(loc="lower right", fontsize=8)
    return _png(canvas)


def throughput(results: Results) -> bytes | None:
    """Guarded and open req/s per way in, store and topology."""
    figures = _measured(results, "http")
    if not figures:
        return None
    keys = list(figures)
    labels = [figures[k]["label"] for k in keys]
    guarded = [figures[k]["value"] for k in keys]
    opened = [figures[k]["extra"]["open_rps"] for k in keys]
    canvas, ax = plt.subplots(figsize=(8, 0.42 * len(keys) + 1.4))
    rows = list(range(len(keys)))
    ax.barh([r - 0.2 for r in rows], opened, height=0.4, color=COLORS[2], label="open")
    ax.barh([r + 0.2 for r in rows], guarded, height=0.4, color=COLORS[0], label="protected")
    for row, key in enumerate(keys):
        refused = figures[key]["extra"].get("refused_share", 0)
        if refused:
            ax.text(guarded[row], row + 0.2, f"  {refused:.0%} refused", va="center", fontsize=7)
    ax.set_yticks(rows, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("requests per second (median of rounds)")
    ax.set_title("HTTP throughput per way in, store and node count")
    ax.set_xlim(right=max([*opened, *guarded, 1.0]) * 1.25)  # room for "refused" notes
    ax.legend(loc="upper right", fontsize=8)
    return _png(canvas)


def cdfs(results: Results) -> bytes | None:
    """Latency CDFs: per-check costs (verify) and the cheap endpoint under load (loop)."""
    panels = [(c, _cell(results, c)) for c in ("verify", "loop")]
    drawn = [(c, cell) for c, cell in panels if cell and cell["series"]]
    if not drawn:
        return None
    canvas, axes = plt.subplots(1, len(drawn), figsize=(5 * len(drawn), 3.6), squeeze=False)
    for ax, (cell_id, cell) in zip(axes[0], drawn, strict=True):
        for index, series in enumerate(cell["series"]):
            ax.plot(
                series["x"],
                series["y"],
                label=series["name"],
                color=COLORS[index % len(COLORS)],
                linewidth=1.4,
            )
        ax.set_xscale("log")
        ax.set_ylabel("share of requests at or below")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
        if cell_id == "verify":
            ax.set_xlabel("µs per check")
            ax.set_title("Per-check latency CDF")
        else:
            ax.set_xlabel("ms per request of the cheap endpoint")
            ax.set_title("One event loop: cheap endpoint under load")
    return _png(canvas)


def http_latency(results: Results) -> bytes | None:
    """The protected endpoint's latency percentiles under wrk, one worker, per way in
    and store (wrk reports p50, p75, p90 and p99; the last round of each)."""
    cell = _cell(results, "http")
    series = cell["series"] if cell else []
    if not series:
        return None
    canvas, ax = plt.subplots(figsize=(8, 3.6))
    for index, line in enumerate(series):
        session = line["name"].startswith("session")
        ax.plot(
            line["x"],
            line["y"],
            label=line["name"].removesuffix(" guarded"),
            color=COLORS[index // 2 % len(COLORS)],
            linestyle="-" if session else "--",
            marker="o",
            markersize=3,
            linewidth=1.4,
        )
    ax.set_xscale("log")
    ax.set_xlabel("ms per request of the protected endpoint (log scale)")
    ax.set_ylabel("share of requests at or below")
    ax.set_title("HTTP latency under load, one worker (solid: session, dashed: JWT)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    return _png(canvas)


def revocation(results: Results) -> bytes | None:
    """Sign-out to refusal on another node, in ms (log scale)."""
    figures = _measured(results, "revocation")
    if not figures:
        return None
    labels, values = [], []
    for figure in figures.values():
        labels.append(figure["label"])
        values.append(figure["value"] * (1000 if figure["unit"] == "s" else 1))
    canvas, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.4))
    colors = [COLORS[3] if "plain" in label else COLORS[0] for label in labels]
    bars = ax.barh(labels, values, color=colors)
    ax.bar_label(bars, labels=[f"{v:,.0f} ms" for v in values], padding=3, fontsize=8)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("ms from sign-out to the first refusal (log scale)")
    ax.set_title("Revocation latency (a plain JWT: its remaining lifetime)")
    return _png(canvas)


def mints(results: Results) -> bytes | None:
    """Mint load: mints per session per minute when measured, else the cost of one mint."""
    figures = _measured(results, "hybrid")
    loads = {k: f for k, f in figures.items() if k.startswith("mints.")}
    canvas, ax = plt.subplots(figsize=(7, 3))
    if loads:
        _mint_groups(ax, loads)
    else:
        costs = {k: f for k, f in figures.items() if k.startswith("mint.")}
        if not costs:
            plt.close(canvas)
            return None
        _bars(
            ax,
            [f["label"] for f in costs.values()],
            [f["value"] for f in costs.values()],
            COLORS[1],
        )
        ax.set_xlabel("µs per mint (p50)")
        ax.set_title("Hybrid: the cost of one mint (mint counts need the gateway)")
    return _png(canvas)


def _mint_groups(ax: Axes, loads: dict[str, dict[str, Any]]) -> None:
    """Per request rate, a bar with the mint cache and one without (keys
    ``mints.<cache|nocache>.<rate>``), on a log scale: 8 against 6,000 must both show."""
    rates = sorted({int(key.rsplit(".", 1)[1]) for key in loads}, reverse=True)
    rows = list(range(len(rates)))
    for offset, (kind, name, color) in enumerate(
        (
            ("nocache", "without the mint cache", COLORS[1]),
            ("cache", "with the mint cache", COLORS[0]),
        )
    ):
        values = [loads.get(f"mints.{kind}.{rate}", {}).get("value") or 0.0 for rate in rates]
        bars = ax.barh(
            [r + (0.2 if offset else -0.2) for r in rows],
            values,
            height=0.4,
            color=color,
            label=name,
        )
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=3, fontsize=8)
    ax.set_yticks(rows, [f"{rate:,} req/s" for rate in rates])
    ax.set_xscale("log")
    top = max((f.get("value") or 0.0 for f in loads.values()), default=1.0)
    ax.set_xlim(right=max(top, 1.0) * 5)  # room for the labels
    ax.set_xlabel("mints per session per minute (log scale)")
    ax.set_title("Hybrid: load on the auth service")
    ax.legend(loc="upper right", fontsize=8)


def footprint(results: Results) -> bytes | None:
    """Bytes per record against the number stored, per store and kind."""
    cell = _cell(results, "footprint")
    if not cell or not cell["series"]:
        return None
    canvas, ax = plt.subplots(figsize=(7, 3.6))
    for index, series in enumerate(cell["series"]):
        style = "-" if series["name"].startswith("session") else "--"
        ax.plot(
            series["x"],
            series["y"],
            style,
            marker="o",
            label=series["name"],
            color=COLORS[index // 2 % len(COLORS)],
        )
    ax.set_xscale("log")
    ax.set_xlabel("records stored")
    ax.set_ylabel("bytes per record")
    ax.set_title("Footprint: sessions (solid) and token families (dashed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(canvas)


PLOTS: dict[str, tuple[str, str, Callable[[Results], bytes | None]]] = {
    "wire": ("wire", "Bytes on the wire per way in", wire),
    "verify": ("verify", "Verification cost per check", verify),
    "throughput": ("http", "Throughput per way in and node count", throughput),
    "http-latency": ("http", "HTTP latency percentiles", http_latency),
    "cdf": ("loop", "Latency CDFs", cdfs),
    "revocation": ("revocation", "Revocation latency", revocation),
    "mints": ("hybrid", "Mint load", mints),
    "footprint": ("footprint", "Footprint growth", footprint),
}
"""name -> (the cell it belongs to, title, function)."""
