"""Skip a test whose tool, server or data is missing; fail it instead under CI.

Locally a missing ``redis-server`` or ``chromium`` should not stop the rest of the
suite, so the test is skipped with a sentence that says what to install. Under CI
(``CI`` set) the same absence is a broken setup, and a suite that passes by skipping
would hide it: the test fails.
"""

from __future__ import annotations

import os
from typing import NoReturn, TypeVar

import pytest

__all__ = ["missing", "require"]

T = TypeVar("T")


def missing(reason: str) -> NoReturn:
    """Skip the calling test because of ``reason``; fail it when ``CI`` is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)")
    pytest.skip(reason)


def require(found: T | None, reason: str) -> T:
    """``found`` when it is there (not ``None``); else :func:`missing` with ``reason``.

    ``require(shutil.which("wrk"), "wrk is not installed (apt-get install wrk)")``
    """
    if found is None:
        missing(reason)
    return found
