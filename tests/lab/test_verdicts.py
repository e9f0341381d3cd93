"""The verdict rules read the figures, and only the figures: they follow the numbers and
say "not measured" (with the reason) when a figure is missing."""

from __future__ import annotations

from typing import Any

from velvetrope.lab.claims import judge_claims, load_claims
from velvetrope.lab.model import CellResult, Figure, not_available
from velvetrope.lab.verdicts import JUDGES


def _wire(cookie: float, jwt: float) -> dict[str, Any]:
    cell = CellResult("wire", 1, "Bytes on the wire")
    cell.figures += [
        Figure("session.request", "cookie", "bytes", value=cookie),
        Figure("jwt.EdDSA.request", "EdDSA", "bytes", value=jwt),
        Figure("jwt.RS256.request", "RS256", "bytes", value=jwt * 1.8),
    ]
    return cell.to_json()


def _verdict(cells: list[dict[str, Any]], claim: str) -> dict[str, Any]:
    return next(row for row in judge_claims(cells) if row["id"] == claim)


def test_every_claim_has_a_rule_and_every_rule_a_claim() -> None:
    assert {c["id"] for c in load_claims()} == set(JUDGES)


def test_the_51x_claim_holds_for_the_2017_comparison() -> None:
    assert _verdict([_wire(6, 304)], "000-size")["verdict"] == "holds"


def test_the_51x_claim_does_not_hold_for_a_real_session_cookie() -> None:
    row = _verdict([_wire(79, 550)], "000-size")
    assert row["verdict"] == "does not hold"
    assert "7.0x" in row["measured"]


def test_a_claim_whose_figures_are_not_available_says_why() -> None:
    cell = CellResult("theft", 9, "Theft")
    cell.figures += [
        Figure("cookie.unbound", "replayed", "trials", value=3, outcome="accepted: 200"),
        not_available("bearer.dpop", "bound", "trials", "DPoP has not landed"),
    ]
    stolen = _verdict([cell.to_json()], "003-stolen")
    assert stolen["verdict"] == "not measured"
    assert (
        "not in this run's matrix" in stolen["verdict_text"]
        or "was not run" in stolen["verdict_text"]
    )
    hijack = _verdict([cell.to_json()], "003-hijack")
    assert hijack["verdict"] == "holds"
    assert "DPoP" not in hijack["measured"]
    assert "DBSC" in hijack["measured"]


def test_performance_follows_the_measured_costs() -> None:
    def verify(cold: float, memory: float, redis: float) -> dict[str, Any]:
        cell = CellResult("verify", 2, "Verification")
        for key, value in (
            ("jwt.EdDSA.cold", cold), ("jwt.EdDSA.warm", 2.0), ("session.memory", memory),
            ("session.sqlite", memory * 2), ("session.redis", redis),
        ):  # fmt: skip
            cell.figures.append(Figure(key, key, "us", value=value))
        return cell.to_json()

    assert _verdict([verify(150, 3, 100)], "002-performance")["verdict"] == "does not hold"
    assert _verdict([verify(150, 3, 400)], "002-performance")["verdict"] == "holds only when"
