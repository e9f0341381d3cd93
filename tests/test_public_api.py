"""The public surface is explicit, sorted and importable (docs/style.md rule 19)."""

from __future__ import annotations

import importlib.resources

import velvetrope


def test_all_is_sorted_and_every_name_exists() -> None:
    names = [n for n in velvetrope.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in velvetrope.__all__:
        assert hasattr(velvetrope, name), name


def test_the_package_is_typed() -> None:
    assert importlib.resources.files("velvetrope").joinpath("py.typed").is_file()


def test_no_module_in_src_imports_random() -> None:
    """SESS-01 / STYLE rule 16: unpredictability comes from `secrets` only."""
    root = importlib.resources.files("velvetrope")
    offenders = []
    for path in root.rglob("*.py"):  # type: ignore[attr-defined]
        text = path.read_text()
        if "import random" in text or "from random" in text or "uuid.uuid4" in text:
            offenders.append(str(path))
    assert offenders == []


def test_core_never_imports_the_web_framework() -> None:
    """docs/architecture.md: core code has no web framework imports."""
    root = importlib.resources.files("velvetrope")
    offenders = []
    for sub in ("core", "stores"):
        for path in root.joinpath(sub).rglob("*.py"):  # type: ignore[attr-defined]
            text = path.read_text()
            for banned in ("fastapi", "starlette", "uvicorn"):
                if f"import {banned}" in text or f"from {banned}" in text:
                    offenders.append(f"{path}: {banned}")
    assert offenders == []
