"""RESET-13: the secrets of mailed links stay out of access logs."""

from __future__ import annotations

import logging

from velvetrope.web.redact import LinkTokenRedactor, redact_link_tokens


def test_RESET_13_access_log_records_lose_the_links_secret() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/password/reset?x=1&token=abcDEF_-123&y=2", "1.1", 200),
        None,
    )
    assert LinkTokenRedactor().filter(record)
    assert record.getMessage() == (
        '127.0.0.1:5 - "GET /password/reset?x=1&token=[redacted]&y=2 HTTP/1.1" 200'
    )


def test_RESET_13_the_pages_install_the_redactor_once() -> None:
    redact_link_tokens()
    redact_link_tokens()
    access = logging.getLogger("uvicorn.access")
    assert sum(isinstance(f, LinkTokenRedactor) for f in access.filters) == 1
