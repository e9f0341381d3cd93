"""Smoke test of an installed velvetrope wheel (run by scripts/package-check in a fresh
venv, from a directory outside the source tree).

Checks that the package imports from the venv (not a checkout), that its data files
shipped (templates, stylesheet, password blocklist), that the CLI runs, and that the
library mode works end to end through velvetrope.testing: install, register, sign in by
cookie and by bearer token, and the error mapping in a route of one's own.
"""

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI

import velvetrope
from velvetrope import Principal, Velvetrope, create_app
from velvetrope.testing import app_client, bearer_for, new_user, settings_for_tests, sign_in


class SmokeFailure(Exception):
    """A check failed."""


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SmokeFailure(what)
    print(f"ok  {what}")


async def library_mode() -> None:
    auth = Velvetrope(settings_for_tests())
    app = FastAPI()
    auth.install(app)

    @app.get("/orders")
    async def orders(who: Annotated[Principal, Depends(auth.principal)]) -> dict[str, str]:
        return {"user": who.user_id}

    async with app_client(app) as client:
        check((await client.get("/orders")).status_code == 401, "401 without a credential")
        ann = await new_user(client)
        await sign_in(client, ann)
        check((await client.get("/orders")).json() == {"user": ann.id}, "200 by cookie")
        headers = await bearer_for(ann)
        check((await client.get("/orders", headers=headers)).status_code == 200, "200 by bearer")


async def pages() -> None:
    server = create_app(settings_for_tests())
    async with app_client(server) as client:
        signin = await client.get("/signin")
        check(signin.status_code == 200 and "Remember me" in signin.text, "templates shipped")
        css = await client.get("/static/velvetrope.css")
        check(css.status_code == 200, "stylesheet shipped")
        weak = await client.post(
            "/auth/register", json={"email": "bob@example.com", "password": "123456789987654321"}
        )
        check(weak.json().get("error") == "weak_password", "password blocklist shipped")


def main() -> None:
    where = Path(velvetrope.__file__).resolve()
    check("site-packages" in where.parts, f"velvetrope imports from the venv ({where})")
    version = subprocess.run(
        [sys.executable, "-m", "velvetrope", "version"], capture_output=True, text=True, check=False
    )
    check(version.returncode == 0 and velvetrope.__version__ in version.stdout, "CLI runs")
    asyncio.run(library_mode())
    asyncio.run(pages())


if __name__ == "__main__":
    try:
        main()
    except SmokeFailure as failure:
        sys.exit(f"wheel smoke test failed: {failure}")
