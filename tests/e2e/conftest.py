"""End-to-end fixtures: ``velvetrope serve`` processes (see :mod:`tests.support.server`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import Servers


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    """Starts servers for the test; every one is stopped (and its pipes closed) after it."""
    started = Servers(tmp_path)
    yield started
    started.stop_all()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "vr.db"
