"""The store backends' client libraries load only when a URL asks for them (issue 9).

``import velvetrope`` and a default app on SQLite must not import ``asyncpg`` or
``redis``: a SQLite deployment need not install them, and importing them costs start-up
time. Each check runs in a fresh interpreter, so modules other tests imported cannot
hide an import, nor fake one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LAZY = ("asyncpg", "redis")
"""The optional backends' client libraries (postgresql:// and redis:// URLs)."""

IMPORT_ONLY = "import velvetrope"

SQLITE_APP = """
import asyncio, sys
from velvetrope import Settings, Velvetrope, create_app

settings = Settings(
    _env_file=None, database_url=sys.argv[1], public_origin="https://auth.example"
)
vr = Velvetrope(settings)
app = create_app(velvetrope=vr)

async def serve_once() -> None:
    async with vr.lifespan(app):
        await vr.service.status()

asyncio.run(serve_once())
"""


def loaded_after(program: str, *args: str) -> set[str]:
    """The modules loaded once ``program`` ran in a fresh interpreter (packages and
    their submodules by full name)."""
    report = "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VELVETROPE_")}
    done = subprocess.run(
        [sys.executable, "-c", program + report, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("package", LAZY)
def test_importing_velvetrope_loads_no_optional_store_client(package: str) -> None:
    loaded = loaded_after(IMPORT_ONLY)
    assert "velvetrope.web.app" in loaded  # the report sees what the program imported
    assert not {m for m in loaded if m.partition(".")[0] == package}


def test_a_default_app_on_sqlite_loads_no_optional_store_client(tmp_path: Path) -> None:
    loaded = loaded_after(SQLITE_APP, f"sqlite:///{tmp_path / 'velvetrope.db'}")
    assert "velvetrope.stores.sqlite" in loaded  # it did open SQLite
    assert not {m for m in loaded if m.partition(".")[0] in LAZY}
