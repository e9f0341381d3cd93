"""The pool's own log lines during an outage: one line each, without a traceback.

While PostgreSQL is away, asyncpg's pool keeps trying to restore its minimum number of
connections and logs each failure as a warning *with* the driver's whole traceback.
An outage is expected operation (requests fail closed with 503 meanwhile, and every
one is logged by the web layer), so a traceback there reads like a crash and buries
real ones. :func:`quiet_pool_outages` keeps those warnings, as one line naming the
failure; any other record, and any failure that is not an outage, passes unchanged.
"""

from __future__ import annotations

import logging

from velvetrope.stores.postgres._db import FAILURES

__all__ = ["quiet_pool_outages"]

POOL_LOGGER = "asyncpg.pool"


class _OutageWithoutTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, FAILURES):
            record.msg = f"{record.getMessage()} ({type(exc).__name__}: {exc})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


_FILTER = _OutageWithoutTraceback()


def quiet_pool_outages() -> None:
    """Install the filter on asyncpg's pool logger (once, however often it is called)."""
    logger = logging.getLogger(POOL_LOGGER)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
