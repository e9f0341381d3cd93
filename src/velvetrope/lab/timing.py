"""Per-call timing of in-process operations, in interleaved rounds.

:func:`time_variants` runs every variant (a session lookup in SQLite, a cold EdDSA
verify, ...) for a fixed number of calls per round, after a fixed warm-up, over several
rounds; the order of the variants is reversed every other round, so a slow drift of
the machine falls on all of them alike. Each round runs inside the noise check. Times
are microseconds per call, from ``time.perf_counter_ns``.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from velvetrope.lab.machine import NoiseCheck
from velvetrope.lab.model import Series, Stats, percentile, stats_of

__all__ = ["Budget", "cdf", "time_variants"]

Call = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Budget:
    """How long to measure: rounds, and warm-up and measured calls per round."""

    rounds: int
    warmup: int
    calls: int


async def time_variants(
    variants: Mapping[str, Call],
    budget: Budget,
    *,
    noise: NoiseCheck,
    cell: str,
    deadline: float,
) -> dict[str, tuple[Stats, list[float]]]:
    """Time each variant; return its stats and all its samples (for CDFs).

    Stops adding rounds once ``deadline`` (``time.monotonic``) has passed, after at
    least one.
    """
    samples: dict[str, list[list[float]]] = {name: [] for name in variants}
    names = list(variants)
    for index in range(budget.rounds):
        if index and time.monotonic() > deadline:
            break
        order = names if index % 2 == 0 else names[::-1]
        with noise.round(cell, f"round {index + 1}"):
            for name in order:
                call = variants[name]
                for _ in range(budget.warmup):
                    await call()
                gc.disable()  # a collection inside one call would be its p99, not its cost
                try:
                    taken = []
                    for _ in range(budget.calls):
                        started = time.perf_counter_ns()
                        await call()
                        taken.append((time.perf_counter_ns() - started) / 1000)
                finally:
                    gc.enable()
                samples[name].append(taken)
    return {
        name: (stats_of(rounds), [v for r in rounds for v in r]) for name, rounds in samples.items()
    }


def cdf(name: str, values: list[float], points: int = 60) -> Series:
    """A CDF of ``values`` as ``points`` (value, cumulative share) pairs."""
    ordered = sorted(values)
    shares = [i / (points - 1) for i in range(points)]
    xs = tuple(percentile(ordered, 100 * s) for s in shares)
    return Series(name, xs, tuple(shares))
