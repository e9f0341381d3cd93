"""The README's curl walk-through runs as written against a real ``velvetrope serve``
(checklist OPS-R1).

Every ``sh`` block that follows a ``<!-- walkthrough -->`` line in README.md is taken
word for word and run, in order, in one ``bash`` with ``set -euo pipefail``, in an
empty folder, with only ``B`` pointing at a server on a spare port (the walk-through's
first line keeps ``B`` when it is set). Any command that fails fails the test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.require import require
from tests.support.server import Servers, child_env

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^<!-- walkthrough -->\n```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def walkthrough() -> list[str]:
    """The README's walk-through blocks, in order."""
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_the_readme_has_the_walkthrough_blocks_this_test_runs() -> None:
    blocks = walkthrough()
    assert len(blocks) == 2, "the sessions block and the tokens block"
    assert blocks[0].startswith("B=${B:-http://127.0.0.1:8000}")
    for block in blocks:  # nothing to fill in by hand outside the sample answers
        commands = [line for line in block.splitlines() if not line.startswith("#")]
        assert not [line for line in commands if "..." in line], block


def test_OPS_R1_the_readme_curl_walkthrough_runs_literally(
    servers: Servers, tmp_path: Path
) -> None:
    bash = require(shutil.which("bash"), "bash is not installed")
    require(shutil.which("curl"), "curl is not installed (apt-get install curl)")
    require(shutil.which("jq"), "jq is not installed (apt-get install jq)")
    server = servers.start(
        tmp_path / "vr.db", env={"VELVETROPE_PASSWORD_HASH_PROFILE": "owasp-minimum"}
    )
    assert server.base_url is not None
    work = tmp_path / "shell"
    work.mkdir()
    script = "set -euo pipefail\n" + "\n".join(walkthrough())
    done = subprocess.run(
        [bash, "-c", script],
        cwd=work,
        env=child_env({"B": server.base_url}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    out = done.stdout
    assert '"email":"ann@example.com"' in out
    assert '"current": false' in out  # the second device was listed
    lines = out.splitlines()
    assert lines.count("401") == 3, out  # the other device, this one, the revoked token
    assert sorted(p.name for p in work.iterdir()) == ["jar", "phone", "tokens.json"]
