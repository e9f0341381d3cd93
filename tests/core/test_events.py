"""SecurityEvents: every event reaches the log and every sink; a failing sink fails nothing."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pytest

from velvetrope.core.events import EventName, SecurityEvents


def test_every_sink_gets_every_event_with_its_fields() -> None:
    seen: list[tuple[EventName, dict[str, str | int]]] = []
    events = SecurityEvents(sinks=[lambda event, fields: seen.append((event, dict(fields)))])
    other: list[EventName] = []
    events.add_sink(lambda event, fields: other.append(event))
    events.emit("login_failed", user="u1", ip="203.0.113.9")
    events.emit("session_ended", session="h1")
    assert seen == [
        ("login_failed", {"user": "u1", "ip": "203.0.113.9"}),
        ("session_ended", {"session": "h1"}),
    ]
    assert other == ["login_failed", "session_ended"]


def test_a_failing_sink_is_logged_and_the_next_sink_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: EventName, fields: Mapping[str, str | int]) -> None:
        raise RuntimeError("sink down")

    seen: list[EventName] = []
    events = SecurityEvents(sinks=[broken, lambda event, fields: seen.append(event)])
    with caplog.at_level(logging.INFO, logger="velvetrope.events"):
        events.emit("user_disabled", user="u2")
    assert seen == ["user_disabled"]
    assert any("event sink" in r.getMessage() and r.exc_info for r in caplog.records)


def test_sinks_run_even_when_the_log_is_silenced() -> None:
    quiet = logging.getLogger("velvetrope.events.test-quiet")
    quiet.setLevel(logging.ERROR)
    seen: list[EventName] = []
    SecurityEvents(quiet, sinks=[lambda event, fields: seen.append(event)]).emit(
        "password_changed", user="u3"
    )
    assert seen == ["password_changed"]
