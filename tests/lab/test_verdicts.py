"""The verdict rules read the figures, and only the figures: they follow the numbers and
say "not measured" (with the reason) when a figure is missing."""

from __future__ import annotations

from typing import Any

import pytest

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
        Figure(
            "cookie.unbound",
            "replayed",
            "trials",
            value=3,
            outcome="accepted: 200, 200, 200",
            extra={"accepted": 3, "refused": 0},
        ),
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


# A run like the published one, as (value, extra) per cell and figure; the outcome words
# are left neutral on purpose: the verdicts must come from the numbers.
TRIALS = 3.0
BASE: dict[str, dict[str, tuple[float, dict[str, float]]]] = {
    "wire": {
        "session.request": (79, {}),
        "jwt.EdDSA.request": (585, {}),
        "jwt.RS256.request": (1011, {}),
        "jwt.EdDSA.cookie_request": (596, {}),
        "jwt.EdDSA.claims.request": (686, {"added": 101}),
        "jwt.parts": (3, {}),
        "session.id_chars": (43, {}),
        "jwt.claims_readable": (10, {}),
        "jwt.lifetime": (900, {}),
    },
    "verify": {
        "jwt.EdDSA.cold": (171, {}),
        "jwt.EdDSA.warm": (4.9, {}),
        "jwt.EdDSA.signature": (141, {}),
        "jwt.revocation": (0.33, {}),
        "session.memory": (5.9, {}),
        "session.sqlite": (12.2, {}),
        "session.redis": (164, {}),
    },
    "loop": {
        "probe.idle": (2.0, {"p50": 0.4}),
        "probe.sessions": (5.5, {"p50": 2.6}),
        "probe.jwt-warm": (5.0, {"p50": 2.3}),
        "probe.jwt-cold": (4.9, {"p50": 2.4}),
    },
    "http": {
        "session.sqlite.n1": (2806, {}),
        "session.sqlite.n3": (3616, {}),
        "jwt.sqlite.n3": (4156, {}),
        "session.redis.n3": (3918, {}),
        "jwt.redis.n3": (3932, {}),
        "session.memory.n3": (1000, {"refused_share": 0.67}),
        "jwt.memory.n3": (1000, {"refused_share": 0.67}),
    },
    "revocation": {
        "session.redis": (2.0, {}),
        "jwt.redis": (1.4, {}),
        "plain-jwt": (4.3, {"lifetime_s": 5}),
    },
    "footprint": {
        "session.sqlite.100000": (694, {}),
        "family.sqlite.100000": (623, {}),
    },
    "browser": {
        "xss.localstorage": (TRIALS, {"readable": TRIALS}),
        "xss.httponly": (TRIALS, {"readable": 0}),
        "xss.session-riding": (TRIALS, {"accepted": TRIALS, "refused": 0, "status": 200}),
        "localstorage.read": (0.74, {}),
        "worker.localstorage": (TRIALS, {"available": 0}),
        "localstorage.object": (TRIALS, {"string": TRIALS}),
        "cross-site.cookie": (TRIALS, {"accepted": 0, "refused": TRIALS, "status": 401}),
        "cross-site.bearer": (TRIALS, {"accepted": TRIALS, "refused": 0, "status": 200}),
    },
    "theft": {
        "cookie.unbound": (TRIALS, {"accepted": TRIALS, "refused": 0}),
        "bearer.unbound": (TRIALS, {"accepted": TRIALS, "refused": 0}),
        "bearer.tampered": (TRIALS, {"accepted": 0, "refused": TRIALS}),
        "cookie.dbsc": (TRIALS, {"accepted": 0, "refused": TRIALS}),
        "bearer.dpop": (TRIALS, {"accepted": 0, "refused": TRIALS}),
        "cookie.persistence": (1, {"persistent": 0}),
    },
    "hybrid": {
        "mints.cache.1": (8, {}),
        "mints.nocache.1": (60, {}),
        "mints.cache.100": (8, {}),
        "mints.nocache.100": (6000, {}),
    },
}
ACCEPTED = (TRIALS, {"accepted": TRIALS, "refused": 0})
REFUSED = (TRIALS, {"accepted": 0, "refused": TRIALS})
Change = dict[str, tuple[float, dict[str, float]] | None]


def _run(change: Change) -> list[dict[str, Any]]:
    """The base run with ``change`` ("cell/key": new (value, extra), or None to drop it)."""
    cells = []
    for number, (cell_id, figures) in enumerate(BASE.items(), start=1):
        cell = CellResult(cell_id, number, cell_id)
        for key, (value, extra) in figures.items():
            changed = change.get(f"{cell_id}/{key}", (value, extra))
            if changed is not None:
                cell.figures.append(
                    Figure(key, key, "-", value=changed[0], outcome="seen", extra=changed[1])
                )
        cells.append(cell.to_json())
    return cells


FLIPS: list[tuple[str, Change, str, str]] = [
    ("002-storage", {"footprint/family.sqlite.100000": (100, {})}, "holds only when", "holds"),
    (
        "002-scalability",
        {"http/jwt.memory.n3": (1000, {"refused_share": 0})},
        "holds only when",
        "holds",
    ),
    (
        "000-scales",
        {
            "http/session.sqlite.n3": (4150, {}),
            "http/session.memory.n3": (1000, {"refused_share": 0}),
        },
        "holds only when",
        "does not hold",
    ),
    (
        "002-client-stores",
        {"browser/xss.localstorage": (TRIALS, {"readable": 0})},
        "holds",
        "holds only when",
    ),
    ("002-format", {"wire/jwt.parts": (5, {})}, "holds", "does not hold"),
    ("002-flow", {"wire/jwt.EdDSA.cookie_request": None}, "holds only when", "holds"),
    ("002-performance", {"verify/session.redis": (400, {})}, "does not hold", "holds only when"),
    ("002-security", {"browser/cross-site.cookie": ACCEPTED}, "holds only when", "does not hold"),
    ("002-logout", {"revocation/jwt.redis": (60_000, {})}, "holds only when", "holds"),
    ("002-expiration", {"wire/jwt.lifetime": (0, {})}, "holds", "does not hold"),
    ("002-revocation", {"revocation/jwt.redis": (60_000, {})}, "holds only when", "holds"),
    ("003-revoke", {"revocation/jwt.redis": (60_000, {})}, "holds only when", "holds"),
    ("000-cpu", {"verify/jwt.EdDSA.cold": (5.0, {})}, "holds only when", "does not hold"),
    ("000-no-network", {"verify/session.redis": (50, {})}, "holds only when", "does not hold"),
    ("000-claims", {"theft/bearer.tampered": ACCEPTED}, "holds", "does not hold"),
    ("000-encrypted", {"wire/jwt.claims_readable": (0, {})}, "does not hold", "holds"),
    ("000-invalidate", {"revocation/jwt.redis": (6_000, {})}, "holds only when", "holds"),
    ("003-logout", {"revocation/jwt.redis": (6_000, {})}, "holds only when", "holds"),
    (
        "000-localstorage-js",
        {"browser/xss.localstorage": (TRIALS, {"readable": 0})},
        "holds",
        "does not hold",
    ),
    (
        "000-httponly",
        {"browser/xss.httponly": (TRIALS, {"readable": TRIALS})},
        "holds only when",
        "does not hold",
    ),
    ("000-httponly", {"browser/xss.session-riding": REFUSED}, "holds only when", "holds"),
    (
        "000-localstorage-workers",
        {"browser/worker.localstorage": (TRIALS, {"available": TRIALS})},
        "holds",
        "does not hold",
    ),
    (
        "000-localstorage-sync",
        {"browser/localstorage.read": (2_000, {})},
        "holds only when",
        "holds",
    ),
    ("003-stolen", {"theft/bearer.unbound": REFUSED}, "holds only when", "does not hold"),
    (
        "003-stolen",
        {"theft/bearer.dpop": ACCEPTED, "revocation/jwt.redis": (60_000, {})},
        "holds only when",
        "holds",
    ),
    ("003-hijack", {"theft/cookie.unbound": REFUSED}, "holds only when", "does not hold"),
    ("003-hijack", {"theft/cookie.dbsc": ACCEPTED}, "holds only when", "holds"),
    ("003-bloat", {"wire/jwt.EdDSA.claims.request": (585, {"added": 0})}, "holds", "does not hold"),
    (
        "003-shared-storage",
        {"http/session.memory.n3": (1000, {"refused_share": 0})},
        "holds",
        "does not hold",
    ),
    (
        "003-invalidate-sessions",
        {"revocation/session.redis": (5_000, {})},
        "holds",
        "holds only when",
    ),
    (
        "004-multiple-devices",
        {"browser/cross-site.cookie": ACCEPTED},
        "holds only when",
        "does not hold",
    ),
    (
        "004-multiple-devices",
        {"browser/cross-site.bearer": REFUSED},
        "holds only when",
        "does not hold",
    ),
]
FLIPS += [
    (
        "000-string-only",
        {"browser/localstorage.object": (TRIALS, {"string": 0})},
        "holds",
        "does not hold",
    ),
    (
        "000-session-cookie",
        {"theft/cookie.persistence": (1, {"persistent": 1})},
        "holds",
        "holds only when",
    ),
    ("001-hybrid-pressure", {"hybrid/mints.cache.100": (5900, {})}, "holds only when", "holds"),
    (
        "001-hybrid-pressure",
        {"hybrid/mints.nocache.100": (40, {})},
        "holds only when",
        "does not hold",
    ),
]
# Definitions and advice: nothing measured could contradict them.
NOT_FLIPPED = {"002-verification", "002-ideal-for", "000-libraries", "000-size"}


@pytest.mark.parametrize(
    ("claim", "change", "before", "after"),
    FLIPS,
    ids=[f"{claim}-{'+'.join(change)}" for claim, change, _b, _a in FLIPS],
)
def test_a_contrary_observation_changes_the_verdict(
    claim: str, change: Change, before: str, after: str
) -> None:
    assert _verdict(_run({}), claim)["verdict"] == before
    assert _verdict(_run(change), claim)["verdict"] == after


def test_every_rule_is_flipped_by_some_observation() -> None:
    """000-size has its own tests above; the rest are definitions or advice."""
    assert {claim for claim, *_rest in FLIPS} | NOT_FLIPPED == set(JUDGES)


def test_trials_that_disagree_or_an_unexpected_status_give_no_verdict() -> None:
    split = _verdict(
        _run({"theft/bearer.tampered": (TRIALS, {"accepted": 1, "refused": 2})}), "000-claims"
    )
    assert split["verdict"] == "not measured"
    assert "disagreed" in split["verdict_text"]
    errors = _verdict(
        _run({"theft/bearer.tampered": (TRIALS, {"accepted": 0, "refused": 0})}), "000-claims"
    )
    assert errors["verdict"] == "not measured"
    assert "neither accepted nor refused" in errors["verdict_text"]


def test_a_figure_without_its_counts_gives_no_verdict() -> None:
    """A results.json from before the counts existed is not judged from its words."""
    row = _verdict(_run({"browser/worker.localstorage": (TRIALS, {})}), "000-localstorage-workers")
    assert row["verdict"] == "not measured"
    assert "rerun" in row["verdict_text"]
