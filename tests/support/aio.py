"""A bounded await for tests (``asyncio.wait_for`` is banned: see pyproject.toml)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(seconds: float, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable``, raising ``TimeoutError`` after ``seconds``."""
    async with asyncio.timeout(seconds):
        return await awaitable
