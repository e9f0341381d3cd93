"""The README's library example, as written (``examples/app.py``), served by uvicorn on a
port of its own and driven over real HTTP: 401 without a credential, 409 for a
duplicate, 403 for a failed CSRF check, 200 signed in by cookie and by bearer token."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cookies import SetCookie
from tests.support.ports import free_port
from tests.support.server import COOKIE, HTTP_TIMEOUT, STOP_TIMEOUT, child_env
from tests.support.services import PASSWORD

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "app.py"
STARTUP_TIMEOUT = 30.0


def readme_library_example() -> str:
    """The first Python block of the README's "Add velvetrope to your own app" section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Add velvetrope to your own app", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert match is not None, "no python block in the README's library section"
    return match.group(1)


def test_the_readme_shows_the_example_file_exactly() -> None:
    assert readme_library_example() == EXAMPLE.read_text(encoding="utf-8")


@pytest.fixture
def example(tmp_path: Path) -> Iterator[str]:
    """``uvicorn examples.app:app`` on a free non-default port, configured as the README says."""
    port = free_port()
    assert port != 8000
    origin = f"http://127.0.0.1:{port}"
    env = child_env(
        {
            "VELVETROPE_PUBLIC_ORIGIN": origin,
            "VELVETROPE_DATABASE_URL": "sqlite:///auth.db",  # in the test's directory
            "VELVETROPE_PASSWORD_HASH_PROFILE": "owasp-minimum",  # fast enough for a test
        }
    )
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT), "examples.app:app"]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                httpx.get(f"{origin}/orders", timeout=1.0)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    _, stderr = process.communicate(timeout=STOP_TIMEOUT)
                    pytest.fail(f"uvicorn did not serve the example:\n{stderr}")
                time.sleep(0.1)
        yield origin
    finally:
        process.terminate()
        try:
            process.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
    assert (tmp_path / "auth.db").exists()


def test_the_library_example_answers_as_documented(example: str) -> None:
    with httpx.Client(base_url=example, timeout=HTTP_TIMEOUT) as http:
        anonymous = http.get("/orders")
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == "not_authenticated"
        assert anonymous.headers["www-authenticate"].startswith("Bearer")

        body = {"email": "ann@example.com", "password": PASSWORD}
        assert http.post("/auth/register", json=body).status_code == 201
        duplicate = http.post("/auth/register", json=body)
        assert (duplicate.status_code, duplicate.json()["error"]) == (409, "email_taken")

        signed_in = http.post("/auth/login", json=body, headers={"Origin": example})
        assert signed_in.status_code == 200, signed_in.text
        [cookie] = [
            SetCookie.parse(h)
            for h in signed_in.headers.get_list("set-cookie")
            if h.startswith(COOKIE + "=")
        ]
        csrf = signed_in.json()["csrf_token"]
        # httpx keeps Secure cookies off plain http, as the issue found; a browser on
        # 127.0.0.1 sends them (a secure context), so the test sends it as one would.
        with_cookie = {"Cookie": f"{COOKIE}={cookie.value}", "Origin": example}

        mine = http.get("/orders", headers=with_cookie)
        assert mine.status_code == 200
        assert mine.json() == {
            "user": mine.json()["user"],
            "email": "ann@example.com",
            "claims": {},
        }

        forged = http.post("/orders", headers={**with_cookie, "X-CSRF-Token": "forged"})
        assert (forged.status_code, forged.json()["error"]) == (403, "csrf_failed")
        cross_site = http.post("/orders", headers={**with_cookie, "Origin": "https://evil.example"})
        assert (cross_site.status_code, cross_site.json()["error"]) == (403, "csrf_failed")
        placed = http.post("/orders", headers={**with_cookie, "X-CSRF-Token": csrf})
        assert placed.status_code == 201

        tokens = http.post(
            "/auth/token",
            data={"grant_type": "password", "username": body["email"], "password": PASSWORD},
        )
        assert tokens.status_code == 200, tokens.text
        bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
        by_token = http.get("/orders", headers=bearer)
        assert by_token.status_code == 200
        assert by_token.json()["user"] == mine.json()["user"]
        assert http.post("/orders", headers=bearer).status_code == 201  # no CSRF for bearer
