"""The README's testing example, run as written: its ``pyproject.toml`` lines, the library
example as ``app.py`` and the tests as ``test_app.py``, in a project directory of their
own, under a pytest of its own (the ``velvetrope`` plugin loaded from the entry point)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import child_env

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 120
# A project with velvetrope and pytest, nothing else: this venv's pytest-asyncio (the
# suite's own) stays out, so anyio (which FastAPI brings) runs the async tests.
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio"]


def readme_blocks(heading: str, language: str) -> list[str]:
    """The ``language`` code blocks of the README section under ``heading``."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(heading + "\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


def test_the_readme_shows_the_testing_example_file_exactly() -> None:
    [tests] = readme_blocks("### Testing your app", "python")
    assert tests == (ROOT / "examples" / "test_app.py").read_text(encoding="utf-8")


def test_the_readme_testing_example_passes_as_written(tmp_path: Path) -> None:
    [app] = readme_blocks("## Add velvetrope to your own app", "python")[:1]
    [config] = readme_blocks("### Testing your app", "toml")
    [tests] = readme_blocks("### Testing your app", "python")
    (tmp_path / "app.py").write_text(app, encoding="utf-8")
    (tmp_path / "test_app.py").write_text(tests, encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(config, encoding="utf-8")
    run = subprocess.run(
        [*PYTEST, "-W", "error"],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"\b3 passed\b", run.stdout), run.stdout
    assert not (tmp_path / "velvetrope.db").exists()  # the memory store, as configured
