"""The store contract suite runs every test on every backend."""

from __future__ import annotations

import pytest

from tests.support.stores import BACKENDS


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each store backend in turn: every test here that uses a store runs once per backend."""
    return str(request.param)
