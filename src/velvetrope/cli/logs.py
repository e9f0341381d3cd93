"""Logging for ``velvetrope serve``: timestamped text, or one JSON object per line.

``VELVETROPE_LOG_FORMAT=text`` (the default) writes
``2026-12-02T13:37:00.123Z INFO velvetrope.events event=login_failed email=… ip=…``;
``json`` writes ``{"time": "2026-12-02T13:37:00.123Z", "level": "INFO", "logger":
"velvetrope.events", "message": "event=login_failed …", "event": "login_failed",
"email": "…", "ip": "…"}``: a security event's fields are keys of their own. The
access log (``VELVETROPE_ACCESS_LOG=true``) is uvicorn's, one line per request with
the client, method, path, protocol and status (``client``, ``method``, ``path``,
``http_version``, ``status`` in JSON). Times are UTC. Everything goes to stderr.

The configuration is a :func:`logging.config.dictConfig` mapping that uvicorn applies
in the server process and in every worker it starts.
"""

from __future__ import annotations

import json
import logging
import logging.config
import time
from typing import Any, Literal

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging", "logging_config"]

LogFormat = Literal["text", "json"]

# Attributes every LogRecord has: anything else on a record came as `extra`.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
_RESERVED = frozenset({"time", "level", "logger", "message", "event", "exc"})
_ACCESS_KEYS = ("client", "method", "path", "http_version", "status")


def _utc(record: logging.LogRecord) -> str:
    seconds = int(record.created)
    millis = int((record.created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class TextFormatter(logging.Formatter):
    """``<UTC time> <LEVEL> <logger> <message>``."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc(record)} {record.levelname} {record.name} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a security event's fields become keys of their own."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        event = getattr(record, "event", None)
        if isinstance(event, str):
            entry["event"] = event
            fields = getattr(record, "fields", None)
            if isinstance(fields, dict):
                for key, value in fields.items():
                    entry[f"field_{key}" if key in _RESERVED else str(key)] = value
        elif (
            record.name == "uvicorn.access"
            and isinstance(record.args, tuple)
            and len(record.args) == len(_ACCESS_KEYS)
        ):
            entry.update(zip(_ACCESS_KEYS, record.args, strict=True))
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry and key not in {"fields", "color_message"}:
                entry[key] = value if isinstance(value, (str, int, float, bool)) else repr(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def logging_config(level: str, log_format: LogFormat, *, access_log: bool) -> dict[str, Any]:
    """The ``dictConfig`` mapping for the root, velvetrope's and uvicorn's loggers."""
    formatter = f"velvetrope.cli.logs.{'Json' if log_format == 'json' else 'Text'}Formatter"
    handler = {"class": "logging.StreamHandler", "formatter": "main", "stream": "ext://sys.stderr"}
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": {"()": formatter}},
        "handlers": {"main": handler},
        "root": {"handlers": ["main"], "level": level},
        "loggers": {
            # uvicorn's own loggers would otherwise keep the handlers of its default config.
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {
                "handlers": [],
                "level": "INFO" if access_log else "WARNING",
                "propagate": True,
            },
        },
    }


def configure_logging(level: str, log_format: LogFormat, *, access_log: bool) -> dict[str, Any]:
    """Apply :func:`logging_config` to this process and return it (for uvicorn's workers)."""
    config = logging_config(level, log_format, access_log=access_log)
    logging.config.dictConfig(config)
    return config
