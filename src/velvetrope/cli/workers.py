"""``velvetrope serve --workers N``: N uvicorn worker processes on one listening socket.

The command binds the socket, checks the stores, then starts the workers with
uvicorn's process supervisor; each worker builds the app from the environment (the
command exports the settings its flags chose, so every worker agrees with it), opens
its own connections to the stores, and runs its own background work. The command says
it is listening only once every worker has started; a worker that dies is replaced.

What the workers share is what the stores share: on SQLite, sessions through the
write epoch and ``PRAGMA data_version`` and revocations through the revocation epoch
(:mod:`velvetrope.stores.sqlite.epoch`), so a sign-out or revocation made through one
worker is refused by every other on its very next request.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable

from fastapi import FastAPI
from uvicorn import Config
from uvicorn.supervisors import Multiprocess

from velvetrope.settings import Settings
from velvetrope.web.app import create_app

__all__ = ["STARTUP_TIMEOUT", "WORKER_APP", "Workers", "build_server_app", "export_settings"]

WORKER_APP = "velvetrope.cli.workers:worker_app"
STARTUP_TIMEOUT = 60.0
_logger = logging.getLogger("velvetrope")


def build_server_app(settings: Settings) -> FastAPI:
    """The server app, with its metrics when ``VELVETROPE_METRICS_PORT`` is set.

    Raises:
        ConfigurationError, StoreUnavailable: As :func:`create_app`.
    """
    app = create_app(settings)
    if settings.metrics_port is not None:
        from velvetrope.web.metrics import instrument  # noqa: PLC0415 - after the env is set

        instrument(app)
    return app


def worker_app() -> FastAPI:
    """The app factory each worker process calls (settings from the environment)."""
    return build_server_app(Settings())


def export_settings(settings: Settings) -> None:
    """Put what the command's flags chose into this process's environment, which the
    workers inherit, so they build the very same settings."""
    chosen = {
        "VELVETROPE_HOST": settings.host,
        "VELVETROPE_PORT": str(settings.port),
        "VELVETROPE_DATABASE_URL": settings.database_url,
        "VELVETROPE_WORKERS": str(settings.workers),
    }
    if settings.public_origin is not None:
        chosen["VELVETROPE_PUBLIC_ORIGIN"] = settings.public_origin
    os.environ.update(chosen)


class Workers(Multiprocess):
    """uvicorn's supervisor that announces once every worker has started, and stops
    (instead of serving with fewer) if one cannot start."""

    def __init__(
        self, config: Config, sockets: list[socket.socket], *, announce: Callable[[], None]
    ) -> None:
        super().__init__(config, sockets)
        self._announce = announce
        self.failed = False

    def init_processes(self) -> None:
        super().init_processes()
        for process in self.processes:
            if not process.wait_until_ready(STARTUP_TIMEOUT, self.should_exit):
                if not self.should_exit.is_set():
                    _logger.error("worker process %s did not start; stopping", process.pid)
                    self.failed = True
                    self.should_exit.set()
                return
        self._announce()
