"""How the browser and theft cells turn what they saw into figures: words for people,
counts in ``extra`` for the verdicts, and a failing binding that stays its own figure."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from velvetrope.lab.cells import browser, theft
from velvetrope.lab.context import LabContext
from velvetrope.lab.machine import NoiseCheck
from velvetrope.lab.model import CellResult
from velvetrope.lab.services import ServiceUnavailable


def _ctx(tmp_path: Path) -> LabContext:
    fake = SimpleNamespace(
        noise=NoiseCheck(), scratch=tmp_path, services=None, step=lambda _text: None
    )
    return cast(LabContext, fake)


@pytest.mark.parametrize(
    ("answer", "words", "available"),
    [
        ("undefined", "not available: undefined", 0.0),
        ("error: SecurityError", "not available: error: SecurityError", 0.0),
        ("available", "available: a worker can read localStorage", 1.0),
    ],
)
def test_the_worker_answer_is_reported_as_it_was(answer: str, words: str, available: float) -> None:
    assert browser.worker_outcome(answer) == (words, {"available": available})


def test_a_cross_site_status_is_said_as_it_is() -> None:
    assert browser.cross_site_outcome(401, credential="cookie")[0] == "401: the cookie was not sent"
    assert browser.cross_site_outcome(200, credential="cookie")[1]["accepted"] == 1.0
    odd, counts = browser.cross_site_outcome(500, credential="bearer")
    assert odd == "500: an unexpected answer"
    assert counts["accepted"] == counts["refused"] == 0.0


def test_trials_are_counted_and_a_shared_status_kept() -> None:
    figure = browser._agreed(
        "cross-site.cookie",
        [browser.cross_site_outcome(401, credential="cookie")] * 2
        + [browser.cross_site_outcome(200, credential="cookie")],
    )
    assert figure.value == 3.0
    assert figure.extra == {"accepted": 1.0, "refused": 2.0}
    assert figure.outcome is not None
    assert figure.outcome.startswith("trials disagreed")
    same = browser._agreed("xss.localstorage", [browser.read_outcome("a.b.c")] * 3)
    assert same.extra == {"readable": 3.0}
    assert same.outcome == "readable: the script got the token"


@pytest.mark.parametrize(
    ("statuses", "outcome", "accepted", "refused"),
    [
        ([200, 200, 200], "accepted: 200, 200, 200", 3, 0),
        ([401, 403, 401], "refused: 401, 403, 401", 0, 3),
        ([200, 401, 200], "mixed: 200, 401, 200", 2, 1),
        ([500, 500, 500], "unexpected: 500, 500, 500", 0, 0),
    ],
)
def test_a_replay_is_accepted_only_on_200_and_refused_only_on_401_or_403(
    statuses: list[int], outcome: str, accepted: int, refused: int
) -> None:
    figure = theft.replay_figure("bearer.dpop", "bound", statuses)
    assert figure.outcome == outcome
    assert (figure.extra["accepted"], figure.extra["refused"]) == (accepted, refused)
    assert figure.value == len(statuses)


def test_a_binding_that_fails_is_its_own_figure_and_the_other_is_still_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Node:
        def client(self, **_kw: Any) -> Any:
            return SimpleNamespace(sign_up=lambda: None, close=lambda: None)

    @contextlib.contextmanager
    def one_node(*_args: Any) -> Iterator[tuple[Node]]:
        yield (Node(),)

    def no_offer(_node: Any) -> int:
        raise ServiceUnavailable("sign-in offered no device binding (200)")

    monkeypatch.setattr(theft, "store_env", lambda *_a: {})
    monkeypatch.setattr(theft, "nodes", one_node)
    monkeypatch.setattr(
        theft,
        "_replays",
        lambda *_a: [theft.replay_figure(k, label, [200] * 3) for k, label in theft.UNBOUND],
    )
    monkeypatch.setattr(theft, "_sign_in_cookie", lambda _node: theft.cookie_persistence("a=b"))
    monkeypatch.setattr(theft, "dbsc_replay", no_offer)
    monkeypatch.setattr(theft, "dpop_replay", lambda _node: 401)
    result = CellResult("theft", 9, "Theft")
    theft.measure(_ctx(tmp_path), result)
    keys = [f.key for f in result.figures]
    assert sorted(keys) == sorted(set(keys)), "no figure twice"
    dbsc, dpop = result.figure("cookie.dbsc"), result.figure("bearer.dpop")
    assert dbsc is not None
    assert not dbsc.measured
    assert dbsc.reason == "sign-in offered no device binding (200)"
    assert dpop is not None
    assert dpop.measured
    assert dpop.outcome == "refused: 401, 401, 401"
    assert result.status == "partial"


@pytest.mark.parametrize(
    ("set_cookie", "persistent", "outcome"),
    [
        (
            "__Host-velvetrope-session=abc; HttpOnly; Path=/; SameSite=lax; Secure",
            0.0,
            "browser-session cookie: no Max-Age, no Expires",
        ),
        ("velvetrope-session=abc; Max-Age=1800; Path=/", 1.0, "persistent: Max-Age=1800"),
        (
            "velvetrope-session=abc; expires=Thu, 01 Jan 2037 00:00:00 GMT",
            1.0,
            "persistent: Expires=Thu, 01 Jan 2037 00:00:00 GMT",
        ),
    ],
)
def test_a_session_cookie_with_max_age_or_expires_outlives_the_browser(
    set_cookie: str, persistent: float, outcome: str
) -> None:
    figure = theft.cookie_persistence(set_cookie)
    assert figure.extra["persistent"] == persistent
    assert figure.outcome == outcome
