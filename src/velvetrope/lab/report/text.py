"""Words and numbers both reports share: a figure's value, its spread, the ~51x line,
the run's summary."""

from __future__ import annotations

from typing import Any

__all__ = ["fifty_one_line", "figure_cells", "machine_line", "run_line", "value_text"]


def _number(value: float, unit: str) -> str:
    if unit in ("bytes", "req/s", "trials", "chars", "parts", "claims", "mints/min"):
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"


def value_text(figure: dict[str, Any]) -> str:
    """``12.3 us`` or ``not available``."""
    if figure["status"] != "measured":
        return "not available"
    unit = "µs" if figure["unit"] == "us" else figure["unit"]
    return f"{_number(figure['value'], figure['unit'])} {unit}"


def _spread(figure: dict[str, Any]) -> str:
    stats = figure.get("stats")
    if not stats:
        return ""
    parts = (
        [f"p99 {_number(stats['p99'], figure['unit'])}"] if figure["unit"] in ("us", "ms") else []
    )
    extra = figure.get("extra") or {}
    if "round_p99_min" in extra and len(stats["round_medians"]) > 1:
        # The value is a p99: its spread is that of the rounds' p99s, not their medians.
        parts.append(
            f"round p99s {_number(extra['round_p99_min'], figure['unit'])} to "
            f"{_number(extra['round_p99_max'], figure['unit'])}"
        )
    elif len(stats["round_medians"]) > 1:
        parts.append(
            f"rounds {_number(stats['spread_min'], figure['unit'])} to "
            f"{_number(stats['spread_max'], figure['unit'])}"
        )
    parts.append(f"n={stats['samples']:,}")
    return ", ".join(parts)


def _detail(figure: dict[str, Any]) -> str:
    if figure["status"] != "measured":
        return f"not available: {figure['reason']}"
    extra = figure.get("extra") or {}
    words = [figure["outcome"]] if figure.get("outcome") else []
    if "open_rps" in extra:
        words.append(
            f"open {extra['open_rps']:,.0f} req/s, ratio {extra['ratio']:.2f}, p50/p99 "
            f"{extra['guarded_p50_ms']:.1f}/{extra['guarded_p99_ms']:.1f} ms"
            + (f", {extra['refused_share']:.0%} refused" if extra.get("refused_share") else "")
        )
    if "ratio_to_session" in extra:
        words.append(f"{extra['ratio_to_session']:.1f}x the session cookie")
    if "background_rps" in extra:
        words.append(f"p50 {extra['p50']:.2f} ms; background {extra['background_rps']:,.0f} req/s")
    if "lifetime_s" in extra:
        words.append(f"lifetime {extra['lifetime_s']:.0f} s here (default 900 s)")
    return "; ".join(words)


def figure_cells(figure: dict[str, Any]) -> tuple[str, str, str, str]:
    """(label, value, spread, detail) for a table row."""
    return figure["label"], value_text(figure), _spread(figure), _detail(figure)


def fifty_one_line(results: dict[str, Any]) -> str:
    """The ~51x claim against velvetrope's real cookie and tokens."""
    wire = next((c for c in results["cells"] if c["id"] == "wire"), None)
    figures = {f["key"]: f for f in wire["figures"]} if wire else {}
    session = figures.get("session.request")
    tokens = [figures.get(f"jwt.{a}.request") for a in ("HS256", "EdDSA", "ES256", "RS256")]
    measured = [t for t in tokens if t and t["status"] == "measured"]
    if not session or session["status"] != "measured" or not measured:
        return "The ~51x claim: not measured in this run (cell 1 did not run)."
    base = session["value"]
    ratios = ", ".join(
        f"{t['label'].split(':')[0].split(' ')[0]} {t['value']:.0f} B = {t['value'] / base:.1f}x"
        for t in measured
    )
    return (
        f"The “~51x” claim: velvetrope's real session cookie header is {base:.0f} B; the access "
        f"tokens it issues, as bearer headers: {ratios}. The 2017 post behind “~51x” compared a "
        "6-byte unsigned user-id cookie with a 304-byte JWT (50.7x)."
    )


def run_line(results: dict[str, Any]) -> str:
    """Mode, duration, command."""
    minutes = results["seconds"] / 60
    return (
        f"{results['mode']} run of {len(results['cells'])} cells, "
        f"{results['started_at']} to {results['finished_at']} ({results['seconds']:.0f} s, "
        f"{minutes:.1f} min); command: `{results['command']}`"
    )


def machine_line(results: dict[str, Any]) -> str:
    """The machine in one sentence."""
    m = results["machine"]
    memory = f"{m['memory_bytes'] / 2**30:.0f} GiB" if m.get("memory_bytes") else "? GiB"
    tools = ", ".join(f"{k} {'✓' if v else '✗'}" for k, v in m["tools"].items())
    return (
        f"{m['cpus']} CPUs ({m['cpu_model']}), {memory}, {m['platform']}, {m['python']}; "
        f"load average at start {m.get('load_average')}; tools: {tools}"
    )
