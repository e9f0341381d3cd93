"""The HTTP contract: schemathesis against a real ``velvetrope serve`` finds nothing.

Every check schemathesis has (``--checks all``: undocumented statuses, schema-valid
requests refused, schema-violating requests accepted, response bodies and headers
against the document, auth that is ignored, ...) over its four phases: the examples,
the coverage of each keyword's boundaries, random fuzzing, and the stateful walk the
document's links describe (register -> sign in -> use the token -> refresh -> revoke).
The number of examples is bounded (tests/e2e/schemathesis.toml: 15 per operation, 60
stateful scenarios) and the stateful walk runs beside the other phases, so the test
stays near a minute on a quiet machine; the seed is printed so a failure can be
replayed exactly::

    VELVETROPE_CONTRACT_SEED=<seed> .venv/bin/python -m pytest tests/e2e/test_contract.py
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import Servers, register
from tests.support.services import PASSWORD
from velvetrope.web.openapi import LINKS

pytestmark = pytest.mark.e2e

CONTRACT_USER = "contract@example.com"
RUN_TIMEOUT = 600.0  # ~1 min on a quiet machine; minutes when the machine is loaded
STATEFUL_RUNS = 8  # one walk follows all four links on about half the seeds, 3 on the rest
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")

# Throttling is its own suite's subject; here it would only stop the walk early.
SERVER_ENV = {
    "VELVETROPE_PASSWORD_HASH_PROFILE": "owasp-minimum",
    "VELVETROPE_REGISTRATIONS_PER_IP": "1000000",
    "VELVETROPE_LOGIN_IP_FAILURES": "1000000",
}


def _seed() -> int:
    return int(os.environ.get("VELVETROPE_CONTRACT_SEED") or secrets.randbelow(2**31))


def _schemathesis(base_url: str, phases: str, seed: int, report: Path) -> list[str]:
    """The command of one schemathesis run over ``phases`` (its events in ``report``)."""
    return [
        str(SCHEMATHESIS),
        "--config-file",
        str(Path(__file__).with_name("schemathesis.toml")),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        phases,
        "--seed",
        str(seed),
        "--workers",
        "2" if "fuzzing" in phases else "1",
        "--output-sanitize",
        "false",
        "--no-color",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
    ]


def _walked(report: Path) -> set[str]:
    """The names of the links a stateful run followed (from its NDJSON events)."""
    return set(re.findall(r'"transition":\{"id":"[^"]*? -> \[\d+\] (\w+) -> ', report.read_text()))


def _passed(name: str, stdout: str, stderr: str, returncode: int, seed: int) -> None:
    assert returncode == 0, f"schemathesis found failures ({name}, seed {seed})\n{stdout}\n{stderr}"
    generated = re.search(r"(\d+) generated, (\d+) passed", stdout)
    assert generated is not None, stdout
    assert generated[1] == generated[2], stdout


def test_API_01_schemathesis_finds_no_failure_in_any_phase(
    servers: Servers, tmp_path: Path
) -> None:
    """Two runs at once against one server: the examples, coverage and fuzzing phases,
    and the stateful walk (register -> sign in -> use the token -> refresh -> revoke).
    One walk of a few seconds follows three or four of the four links, depending on
    the seed, so walks with the next seeds follow (each must find nothing too) until
    every link was followed: all four must be, within :data:`STATEFUL_RUNS` walks."""
    server = servers.start(tmp_path / "contract.db", env=SERVER_ENV)
    with server.client() as client:
        register(client, CONTRACT_USER)
    seed = _seed()
    print(f"schemathesis seed: {seed} (VELVETROPE_CONTRACT_SEED={seed} replays this run)")
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
        "NO_COLOR": "1",
        "VELVETROPE_CONTRACT_USER": CONTRACT_USER,
        "VELVETROPE_CONTRACT_PASSWORD": PASSWORD,
    }
    base_url = server.base_url
    assert base_url is not None

    def start(phases: str, run_seed: int, report: Path) -> subprocess.Popen[str]:
        return subprocess.Popen(
            _schemathesis(base_url, phases, run_seed, report),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )

    every_link = {name for links in LINKS.values() for name in links}
    fuzzing = start("examples,coverage,fuzzing", seed, tmp_path / "fuzzing.ndjson")
    walked: dict[int, set[str]] = {}
    try:
        for walk_seed in range(seed, seed + STATEFUL_RUNS):
            report = tmp_path / f"stateful-{walk_seed}.ndjson"
            walk = start("stateful", walk_seed, report)
            stdout, stderr = walk.communicate(timeout=RUN_TIMEOUT)
            print(f"--- stateful, seed {walk_seed} ---\n{stdout[-1500:]}")
            _passed("stateful", stdout, stderr + server.describe(), walk.returncode, walk_seed)
            assert "✅ Stateful" in stdout, stdout
            walked[walk_seed] = _walked(report)
            if set().union(*walked.values()) >= every_link:
                break
        stdout, stderr = fuzzing.communicate(timeout=RUN_TIMEOUT)
    finally:
        if fuzzing.poll() is None:
            fuzzing.kill()
            fuzzing.wait()
    print(f"--- examples, coverage, fuzzing, seed {seed} ---\n{stdout[-6000:]}")
    _passed("fuzzing", stdout, stderr + server.describe(), fuzzing.returncode, seed)
    print("links followed, by stateful seed: " + str({k: sorted(v) for k, v in walked.items()}))
    assert len(every_link) == 4
    assert set().union(*walked.values()) == every_link, walked
