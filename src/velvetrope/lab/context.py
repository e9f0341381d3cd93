"""What every cell is handed: the mode, a scratch directory, the run's servers, the
noise check, its time budget and a way to report progress."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from velvetrope.lab.machine import NoiseCheck
from velvetrope.lab.services import Services

__all__ = ["LabContext"]

T = TypeVar("T")


@dataclass(slots=True)
class LabContext:
    """A cell's view of the run.

    Attributes:
        quick: The CI-sized matrix (seconds, not minutes).
        scratch: A directory of the run's own, deleted afterwards.
        services: The run's redis-server and PostgreSQL cluster (started on first use).
        noise: Every measured round goes through ``noise.round``.
        deadline: ``time.monotonic()`` past which the cell should stop adding rounds.
        step: Report what the cell is doing now (the progress bar's text).
    """

    quick: bool
    scratch: Path
    services: Services
    noise: NoiseCheck
    deadline: float = field(default_factory=lambda: time.monotonic() + 600)
    step: Callable[[str], None] = field(default=lambda _text: None)

    def pick(self, quick: T, full: T) -> T:
        """``quick`` in a quick run, else ``full``."""
        return quick if self.quick else full

    def time_left(self) -> float:
        """Seconds until the cell's deadline."""
        return self.deadline - time.monotonic()
