"""asyncpg's pool logs an outage as one line, without a traceback (found by the soak)."""

from __future__ import annotations

import logging

import pytest

from velvetrope.stores.postgres._logs import POOL_LOGGER, quiet_pool_outages


def _warn(exc: BaseException) -> None:
    try:
        raise exc
    except BaseException:
        logging.getLogger(POOL_LOGGER).warning(
            "Failed to restore the pool connection floor; retrying", exc_info=True
        )


def test_an_outage_is_one_line_naming_the_failure(caplog: pytest.LogCaptureFixture) -> None:
    quiet_pool_outages()
    quiet_pool_outages()  # idempotent
    with caplog.at_level(logging.WARNING, logger=POOL_LOGGER):
        _warn(ConnectionRefusedError(111, "Connection refused"))
    [record] = caplog.records
    assert record.exc_info is None
    assert "Traceback" not in caplog.text
    assert "retrying (ConnectionRefusedError: [Errno 111] Connection refused)" in caplog.text
    assert len(logging.getLogger(POOL_LOGGER).filters) == 1


def test_other_failures_keep_their_traceback(caplog: pytest.LogCaptureFixture) -> None:
    quiet_pool_outages()
    with caplog.at_level(logging.WARNING, logger=POOL_LOGGER):
        _warn(KeyError("a bug, not an outage"))
    assert "Traceback" in caplog.text
