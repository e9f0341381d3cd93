"""Keep the secrets of mailed links out of access logs.

A reset or verification link carries its secret in the query string
(``/password/reset?token=...``), and access logs (uvicorn's, at debug level) print
the whole request line. :class:`LinkTokenRedactor` rewrites ``token=<value>`` to
``token=[redacted]`` in every record of the loggers it is installed on; proxies in
front of velvetrope keep their own logs (README: do not log these query strings).
"""

from __future__ import annotations

import logging
import re

__all__ = ["ACCESS_LOGGERS", "LinkTokenRedactor", "redact_link_tokens"]

ACCESS_LOGGERS = ("uvicorn.access",)
_TOKEN = re.compile(r"(?<=[?&]token=)[^&\s\"']+")
REDACTED = "[redacted]"


class LinkTokenRedactor(logging.Filter):
    """Replaces the value of any ``token`` query parameter in a record's message and args."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "token=" in record.msg:
            record.msg = _TOKEN.sub(REDACTED, record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN.sub(REDACTED, arg) if isinstance(arg, str) and "token=" in arg else arg
                for arg in record.args
            )
        return True


def redact_link_tokens(loggers: tuple[str, ...] = ACCESS_LOGGERS) -> None:
    """Install one :class:`LinkTokenRedactor` on each of ``loggers`` (idempotent)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, LinkTokenRedactor) for f in logger.filters):
            logger.addFilter(LinkTokenRedactor())
