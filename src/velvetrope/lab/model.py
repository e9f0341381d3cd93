"""What a lab run finds: figures, cells and the run, and their JSON form.

A *cell* is one row of the matrix in :mod:`velvetrope.lab.matrix` (bytes on the wire,
verification cost, ...). It holds *figures*: one number each (with its spread over the
interleaved rounds where there were rounds), or "not available" with the reason (a
feature that has not landed, a tool that is missing). A figure that observes a yes/no
behaviour (a browser refusing a cookie) has an ``outcome`` in words and, as its value,
the number of trials that all agreed.

``results.json`` is :meth:`Run.to_json`; its JSON Schema ships beside this module
(``data/results.schema.json``, :func:`schema`), versioned by :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

__all__ = [
    "SCHEMA_VERSION",
    "CellResult",
    "Figure",
    "Series",
    "Stats",
    "not_available",
    "schema",
    "stats_of",
]

SCHEMA_VERSION = 1
Status = Literal["measured", "not_available"]


@dataclass(frozen=True, slots=True)
class Stats:
    """Percentiles of pooled samples, and the spread of the per-round medians."""

    p50: float
    p99: float
    mean: float
    round_medians: tuple[float, ...]
    samples: int

    @property
    def spread(self) -> tuple[float, float]:
        """(lowest, highest) per-round median."""
        return min(self.round_medians), max(self.round_medians)

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        low, high = self.spread
        return {
            "p50": self.p50,
            "p99": self.p99,
            "mean": self.mean,
            "round_medians": list(self.round_medians),
            "spread_min": low,
            "spread_max": high,
            "samples": self.samples,
        }


def percentile(ordered: list[float], q: float) -> float:
    """The ``q`` percentile (0-100) of sorted values, nearest-rank."""
    if not ordered:
        raise ValueError("no samples")
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def stats_of(rounds: list[list[float]]) -> Stats:
    """Stats over rounds of samples (each round a list of values).

    Raises:
        ValueError: No samples at all.
    """
    pooled = sorted(v for r in rounds for v in r)
    medians = tuple(statistics.median(r) for r in rounds if r)
    return Stats(
        p50=percentile(pooled, 50),
        p99=percentile(pooled, 99),
        mean=statistics.fmean(pooled),
        round_medians=medians,
        samples=len(pooled),
    )


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured number, or why there is none.

    Attributes:
        key: Stable id inside its cell (``jwt.EdDSA.cold``).
        label: What it is, for people.
        unit: ``bytes``, ``us``, ``ms``, ``s``, ``req/s``, ``trials``, ...
        status: ``measured`` or ``not_available``.
        value: The headline number (p50 where there are samples); ``None`` when not available.
        stats: Percentiles and spread, when the value comes from repeated samples.
        outcome: For observed behaviour: what was seen, in words.
        reason: Why the figure is not available (one sentence).
        extra: More numbers that belong to it (the open endpoint's req/s, ...).
    """

    key: str
    label: str
    unit: str
    status: Status = "measured"
    value: float | None = None
    stats: Stats | None = None
    outcome: str | None = None
    reason: str | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def measured(self) -> bool:
        """Whether there is a value."""
        return self.status == "measured"

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "key": self.key,
            "label": self.label,
            "unit": self.unit,
            "status": self.status,
            "value": self.value,
            "stats": self.stats.to_json() if self.stats else None,
            "outcome": self.outcome,
            "reason": self.reason,
            "extra": dict(self.extra),
        }


def not_available(key: str, label: str, unit: str, reason: str) -> Figure:
    """A figure that could not be measured, and why."""
    return Figure(key, label, unit, status="not_available", reason=reason)


@dataclass(frozen=True, slots=True)
class Series:
    """Points for a plot (a CDF, a growth curve): ``x`` and ``y`` of one named line."""

    name: str
    x: tuple[float, ...]
    y: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"name": self.name, "x": list(self.x), "y": list(self.y)}


@dataclass(slots=True)
class CellResult:
    """What one cell found."""

    id: str
    number: int
    title: str
    figures: list[Figure] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    @property
    def status(self) -> str:
        """``measured`` (every figure), ``partial`` or ``not_available`` (none)."""
        measured = sum(f.measured for f in self.figures)
        if measured == 0:
            return "not_available"
        return "measured" if measured == len(self.figures) else "partial"

    def figure(self, key: str) -> Figure | None:
        """The figure named ``key``, if the cell has it."""
        return next((f for f in self.figures if f.key == key), None)

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        reasons = sorted({f.reason for f in self.figures if f.reason})
        return {
            "id": self.id,
            "number": self.number,
            "title": self.title,
            "status": self.status,
            "reason": "; ".join(reasons) if self.status == "not_available" else None,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "notes": list(self.notes),
            "figures": [f.to_json() for f in self.figures],
            "series": [s.to_json() for s in self.series],
        }


def schema() -> dict[str, Any]:
    """The JSON Schema of ``results.json``."""
    text = resources.files("velvetrope.lab").joinpath("data/results.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded
