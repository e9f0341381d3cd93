"""The proxy configurations shipped in ``deploy/`` are the ones the tests run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.require import require
from velvetrope.integrations.edge import EXAMPLE, caddyfile, nginx_conf, nginx_site

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_deploy_nginx_is_the_rendered_example() -> None:
    shipped = (DEPLOY / "nginx" / "velvetrope-gateway.conf").read_text()
    assert shipped == nginx_site(EXAMPLE)


def test_deploy_caddyfile_is_the_rendered_example() -> None:
    assert (DEPLOY / "caddy" / "Caddyfile").read_text() == caddyfile(EXAMPLE)


def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    nginx = require(shutil.which("nginx"), "nginx is not installed (.ci/run installs it)")
    user = "root" if os.geteuid() == 0 else None
    (tmp_path / "nginx.conf").write_text(nginx_conf(EXAMPLE, str(tmp_path), user=user))
    checked = subprocess.run(
        [
            nginx,
            "-t",
            "-p",
            str(tmp_path),
            "-e",
            str(tmp_path / "error.log"),
            "-c",
            str(tmp_path / "nginx.conf"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr


def test_caddy_accepts_the_configuration(tmp_path: Path) -> None:
    caddy = require(shutil.which("caddy"), "caddy is not installed (.ci/run installs it)")
    (tmp_path / "Caddyfile").write_text(caddyfile(EXAMPLE))
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    checked = subprocess.run(
        [caddy, "validate", "--adapter", "caddyfile", "--config", str(tmp_path / "Caddyfile")],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env=env,
    )
    assert checked.returncode == 0, checked.stderr


def test_every_guarded_location_overwrites_client_credentials() -> None:
    site = nginx_site(EXAMPLE)
    for header in (
        "Authorization",
        "DPoP",
        "X-Velvetrope-Token",
        "X-Velvetrope-Audience",
        "Cookie",
    ):
        assert f"proxy_set_header {header} " in site
    caddy = caddyfile(EXAMPLE)
    for header in ("X-Velvetrope-Token", "X-Velvetrope-Audience", "DPoP"):
        assert f"request_header -{header}" in caddy
    # The client's Authorization goes to the check (token callers), then the internal
    # token replaces it on the way to the service.
    assert "request_header -Authorization" not in caddy
    check, service = caddy.split("forward_auth", 1)[1].split("\n        }\n", 1)
    assert "Authorization" not in check
    assert (
        'request_header Authorization "Bearer {http.request.header.X-Velvetrope-Token}"' in service
    )
