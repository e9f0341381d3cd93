"""The matrix: the lab's cells, in the order of issue 15, with their time budgets.

A cell is a number, an id (for ``--only``), a title and the function that measures it
(``measure(ctx, result)`` in ``velvetrope.lab.cells``). The budget is how long it may
take in a quick and in a full run; a cell past its budget stops adding rounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from velvetrope.lab.cells import (
    browser,
    footprint,
    http,
    hybrid,
    loop,
    revocation,
    theft,
    verify,
    wire,
)
from velvetrope.lab.context import LabContext
from velvetrope.lab.model import CellResult

__all__ = ["CELLS", "Cell", "select"]


@dataclass(frozen=True, slots=True)
class Cell:
    """One row of the matrix."""

    number: int
    id: str
    title: str
    measure: Callable[[LabContext, CellResult], None]
    quick_seconds: float
    full_seconds: float


CELLS: tuple[Cell, ...] = (
    Cell(1, "wire", "Bytes on the wire", wire.measure, 10, 30),
    Cell(2, "verify", "Verification cost per request", verify.measure, 15, 150),
    Cell(3, "http", "HTTP throughput and latency, protected vs open", http.measure, 20, 420),
    Cell(4, "loop", "Single-threaded cost (one event loop)", loop.measure, 15, 90),
    Cell(5, "revocation", "Revocation latency across nodes", revocation.measure, 15, 120),
    Cell(6, "hybrid", "Hybrid: mints per session", hybrid.measure, 5, 30),
    Cell(
        7,
        "footprint",
        "Footprint of stored sessions and token families",
        footprint.measure,
        15,
        540,
    ),
    Cell(8, "browser", "Browser claims (Chromium)", browser.measure, 20, 60),
    Cell(9, "theft", "Theft: a stolen credential replayed", theft.measure, 10, 30),
)


def select(only: list[str] | None) -> list[Cell]:
    """The cells named in ``only`` (ids or numbers), or all of them.

    Raises:
        ValueError: A name is not a cell.
    """
    if not only:
        return list(CELLS)
    by_name = {c.id: c for c in CELLS} | {str(c.number): c for c in CELLS}
    unknown = [name for name in only if name not in by_name]
    if unknown:
        raise ValueError(
            f"unknown cell {', '.join(unknown)}; choose from {', '.join(c.id for c in CELLS)}"
        )
    return sorted({by_name[name] for name in only}, key=lambda c: c.number)
