"""The notes' claims (``data/claims.toml``, quoted with attribution) and their verdicts.

:func:`judge_claims` turns the cells' figures into the report's first table: for each
claim what was claimed, what was measured here and a verdict in plain words (``holds``,
``does not hold``, ``holds only when``, ``not measured`` when a cell it needs was not
available, ``not a measurable claim`` for advice). The judging rules are in
:mod:`velvetrope.lab.verdicts`, one function per claim.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

from velvetrope.lab.verdicts import JUDGES, Missing, Readings

__all__ = ["judge_claims", "load_claims"]


def load_claims() -> list[dict[str, str]]:
    """The claims, in the order of the file."""
    text = resources.files("velvetrope.lab").joinpath("data/claims.toml").read_text("utf-8")
    claims: list[dict[str, str]] = tomllib.loads(text)["claim"]
    return claims


def _claimed(claim: dict[str, str]) -> str:
    if "row" in claim:
        return f"JWT: “{claim['jwt']}” / Session: “{claim['session']}”"
    return f"“{claim['quote']}”"


def judge_claims(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every claim with its verdict from the measured ``cells`` (their JSON form)."""
    readings = Readings(cells)
    rows = []
    for claim in load_claims():
        judge = JUDGES[claim["id"]]
        try:
            measured, verdict, text = judge(readings)
        except Missing as exc:
            measured, verdict, text = f"not measured here: {exc}", "not measured", str(exc)
        rows.append(
            {
                "id": claim["id"],
                "source": claim["source"],
                "row": claim.get("row"),
                "claimed": _claimed(claim),
                "measured": measured,
                "verdict": verdict,
                "verdict_text": text,
            }
        )
    return rows
