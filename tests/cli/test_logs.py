"""Log lines: UTC timestamps, and JSON objects whose keys include a security event's
fields (checklist OPS-L1)."""

from __future__ import annotations

import json
import logging

from velvetrope.cli.logs import JsonFormatter, TextFormatter, logging_config


def _record(name: str, msg: str, args: object = None, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)  # type: ignore[arg-type]
    record.created = 1_796_220_000.25  # 2026-12-02T14:00:00.250Z
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_OPS_L1_text_lines_start_with_the_utc_time() -> None:
    line = TextFormatter().format(_record("velvetrope", "started"))
    assert line == "2026-12-02T14:00:00.250Z INFO velvetrope started"


def test_OPS_L1_json_lines_carry_the_event_and_its_fields() -> None:
    record = _record(
        "velvetrope.events",
        "event=%s %s",
        ("login_failed", "ip=203.0.113.9 time=x"),
        event="login_failed",
        fields={"ip": "203.0.113.9", "failures": 3, "time": "x"},
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry == {
        "time": "2026-12-02T14:00:00.250Z",
        "level": "INFO",
        "logger": "velvetrope.events",
        "message": "event=login_failed ip=203.0.113.9 time=x",
        "event": "login_failed",
        "ip": "203.0.113.9",
        "failures": 3,
        "field_time": "x",  # a field never overwrites the line's own keys
    }


def test_OPS_L1_json_access_lines_name_their_parts() -> None:
    record = _record(
        "uvicorn.access",
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/auth/me", "1.1", 401),
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["client"] == "127.0.0.1:5000"
    assert entry["method"] == "GET"
    assert entry["path"] == "/auth/me"
    assert entry["status"] == 401


def test_the_configuration_sends_uvicorn_through_the_same_handler() -> None:
    config = logging_config("info", "json", access_log=True)
    assert config["formatters"]["main"]["()"] == "velvetrope.cli.logs.JsonFormatter"
    assert config["loggers"]["uvicorn.access"]["propagate"] is True
    assert (
        logging_config("info", "text", access_log=False)["loggers"]["uvicorn.access"]["level"]
        == "WARNING"
    )
