"""Web and CLI call the service; they never chain through its parts (issue 9).

``ctx.service.accounts.welcome(user)`` ties a route to how ``AuthService`` is built
inside; ``ctx.service.welcome(user)`` does not, so the next refactor of the service's
parts leaves routes, pages and commands alone (docs/architecture.md, "How to add a
route"). This walks the syntax trees of ``web/`` and ``cli/`` for chains
``service.<part>.<member>`` (``service`` a name or an attribute: ``self.service``,
``ctx.service``, ``vr.service``) and fails on any not in :data:`ALLOWED`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "velvetrope"
WALKED = ("web", "cli")

ALLOWED: dict[tuple[str, str], str] = {
    # Device-bound sessions (DBSC): the routes and the sign-in offer speak the binding
    # ceremony step by step (offer, challenge, register, refresh, bound cookie), and
    # SessionBinding is that ceremony's own small facade; its policy's mode says
    # whether sign-ins offer it at all.
    ("web/browser.py", "binding.offer"): "DBSC ceremony",
    ("web/browser.py", "binding.policy"): "DBSC ceremony",
    ("web/routes/dbsc.py", "binding.bound_cookie"): "DBSC ceremony",
    ("web/routes/dbsc.py", "binding.challenge"): "DBSC ceremony",
    ("web/routes/dbsc.py", "binding.register"): "DBSC ceremony",
    ("web/routes/dbsc.py", "binding.refresh"): "DBSC ceremony",
    # The DPoP policy is configuration the web reads to pick its ways in and what the
    # gateway route advertises (routes/gateway.py belongs to the gateway's owners).
    ("web/context.py", "dpop.policy"): "configuration",
    ("web/routes/gateway.py", "dpop.policy"): "configuration",
    # Metrics subscribe to the security-event stream, the seam events are made for.
    ("web/metrics.py", "events.add_sink"): "the event stream",
}
"""(file under src/velvetrope, "part.member") -> why the chain is allowed."""


def chains(source: str) -> list[tuple[int, str]]:
    """The ``service.<part>.<member>`` chains in ``source``: (line, "part.member")."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)):
            continue
        part, holder = node.value, node.value.value
        if (isinstance(holder, ast.Name) and holder.id == "service") or (
            isinstance(holder, ast.Attribute) and holder.attr == "service"
        ):
            found.append((node.lineno, f"{part.attr}.{node.attr}"))
    return found


def walked() -> dict[tuple[str, str], list[int]]:
    """Every chain in web/ and cli/: (file, "part.member") -> its lines."""
    found: dict[tuple[str, str], list[int]] = {}
    for package in WALKED:
        for path in sorted((SRC / package).rglob("*.py")):
            name = path.relative_to(SRC).as_posix()
            for line, chain in chains(path.read_text(encoding="utf-8")):
                found.setdefault((name, chain), []).append(line)
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("await ctx.service.accounts.welcome(user)", [(1, "accounts.welcome")]),
        ("x = self.service.sessions.policy.short_lifetime", [(1, "sessions.policy")]),
        ("keys = service.stores.keys", [(1, "stores.keys")]),
        ("await ctx.service.welcome(user)", []),
        ("ctx.services.accounts.welcome", []),
    ],
)
def test_the_walk_finds_chains_through_the_service(
    source: str, expected: list[tuple[int, str]]
) -> None:
    assert chains(source) == expected


def test_web_and_cli_never_chain_through_the_services_parts() -> None:
    unexplained = [
        f"{file}:{lines[0]} service.{chain}"
        for (file, chain), lines in walked().items()
        if (file, chain) not in ALLOWED
    ]
    assert unexplained == [], "call an AuthService method instead (or explain it in ALLOWED)"


def test_every_allowed_chain_is_still_there() -> None:
    """An allowance whose chain went away is removed, so the list only shrinks."""
    assert set(ALLOWED) - set(walked()) == set()
