"""``velvetrope serve``: run the auth server with uvicorn."""

from __future__ import annotations

import asyncio
import errno
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import typer
import uvicorn

from velvetrope.bootstrap import open_configured_stores
from velvetrope.cli.common import DatabaseOption, clean_errors, err, fail, load_settings, out
from velvetrope.cli.logs import configure_logging
from velvetrope.cli.workers import WORKER_APP, Workers, build_server_app, export_settings
from velvetrope.settings import Settings
from velvetrope.stores.registry import describe_database_url
from velvetrope.web.server_limits import limits_of

if TYPE_CHECKING:
    from velvetrope.cli.metrics import MetricsServer

__all__ = ["serve"]


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that prints its real URL once it is listening (port 0 included)."""

    def __init__(self, config: uvicorn.Config, settings: Settings, *, tls: bool) -> None:
        super().__init__(config)
        self._settings = settings
        self._scheme = "https" if tls else "http"

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            announce(self._settings, tls=self._scheme == "https")


def announce(settings: Settings, *, tls: bool) -> None:
    """Print the URL the server listens on (once it does), as scripts and tests read it."""
    host = settings.host
    shown = f"[{host}]" if ":" in host else host
    workers = "" if settings.workers == 1 else f", {settings.workers} workers"
    out.print(
        f"velvetrope listening on {'https' if tls else 'http'}://{shown}:{settings.port} "
        f"({describe_database_url(settings.database_url)}{workers})",
        soft_wrap=True,
    )
    if settings.public_origin:
        out.print(f"public origin: {settings.public_origin}")
    if settings.metrics_port is not None:
        out.print(f"metrics on http://{settings.metrics_host}:{settings.metrics_port}/metrics")


def bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket before anything starts, so a port in use (or a host
    that is not this machine's) stops the start with one sentence.

    Raises:
        typer.Exit: The address cannot be bound (the cause printed).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            fail(
                f"cannot listen on {shown}: the port is already in use (stop what uses it, "
                "or pick another port with --port)",
                code=1,
            )
        if exc.errno == errno.EACCES:
            fail(f"cannot listen on {shown}: permission denied (ports below 1024 need root)")
        if isinstance(exc, socket.gaierror):
            fail(f"cannot listen on {shown}: unknown host {host!r}")
        fail(f"cannot listen on {shown}: {exc.strerror or exc}")
    sock.set_inheritable(True)  # the workers receive it
    return sock


async def _check_stores(settings: Settings) -> None:
    """Open (and migrate) the configured stores once, so a store that cannot be reached
    stops the start with one sentence, before the server listens.

    Raises:
        StoreUnavailable, ConfigurationError: As ``Stores.start``.
    """
    stores = open_configured_stores(settings)
    try:
        await stores.start()
    finally:
        await stores.aclose()


TlsCertOption = typer.Option(
    None,
    "--tls-cert",
    help="Serve https with this certificate chain (PEM); needs --tls-key. Device-bound "
    "sessions need https.",
    exists=True,
    dir_okay=False,
)
TlsKeyOption = typer.Option(
    None, "--tls-key", help="The certificate's private key (PEM).", exists=True, dir_okay=False
)


WorkersOption = typer.Option(
    None,
    "--workers",
    min=1,
    max=64,
    help="Worker processes on the one port (default 1, or $VELVETROPE_WORKERS); they share "
    "the stores, and a revocation through one is refused by all on the next request.",
    show_default=False,
)


def serve(
    *,
    host: str = typer.Option(None, help="Address to bind (default 127.0.0.1).", show_default=False),
    port: int = typer.Option(
        None, help="Port (default 8000; 0 picks a free one).", show_default=False
    ),
    database: str = DatabaseOption,
    tls_cert: Path | None = TlsCertOption,
    tls_key: Path | None = TlsKeyOption,
    workers: int | None = WorkersOption,
) -> None:
    """Run the auth server."""
    if (tls_cert is None) != (tls_key is None):
        err.print("--tls-cert and --tls-key go together: give both, or neither")
        raise typer.Exit(2)
    settings = load_settings(host=host, port=port, database_url=database, workers=workers)
    if settings.workers > 1 and settings.database_url == "memory://":
        fail(
            "memory:// keeps each worker's users and sessions apart; with --workers use a "
            "store they share (SQLite, PostgreSQL)",
            code=2,
        )
    access_log = settings.access_log or settings.log_level == "debug"
    log_config = configure_logging(settings.log_level, settings.log_format, access_log=access_log)
    # Bound first: a port in use stops the start at once, and port 0 becomes the real
    # port before the origin (and so iss/aud) is derived from it.
    sock = bind(settings.host, settings.port)
    sockets = [sock]
    if settings.port == 0:
        settings = settings.model_copy(update={"port": sock.getsockname()[1]})
    if tls_cert is not None and settings.public_origin is None:
        # Served over https: the origin (iss, aud, CSRF, DPoP's htu) says so.
        shown = f"[{settings.host}]" if ":" in settings.host else settings.host
        settings = settings.model_copy(update={"public_origin": f"https://{shown}:{settings.port}"})
    with clean_errors(settings):
        asyncio.run(_check_stores(settings))
    metrics = _start_metrics(settings)
    try:
        started = _run(
            settings,
            sockets,
            log_config=log_config,
            access_log=access_log,
            tls_cert=tls_cert,
            tls_key=tls_key,
        )
    finally:
        if metrics is not None:
            metrics.close()
    if not started:
        raise typer.Exit(1)


def _run(
    settings: Settings,
    sockets: list[socket.socket],
    *,
    log_config: dict[str, object],
    access_log: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> bool:
    """Serve until stopped: one process, or ``settings.workers`` under a supervisor.
    Return whether the server started."""
    with clean_errors():
        app = build_server_app(settings) if settings.workers == 1 else WORKER_APP
    limits = limits_of(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        date_header=True,
        log_config=log_config,
        log_level=settings.log_level,
        access_log=access_log,
        lifespan="on",
        ssl_certfile=None if tls_cert is None else str(tls_cert),
        ssl_keyfile=None if tls_key is None else str(tls_key),
        factory=settings.workers > 1,
        workers=settings.workers,
        **limits.uvicorn_options(),  # slow and greedy clients (issue 14)
    )
    limits.configure(config)  # before the workers are spawned: they get it with the config
    if settings.workers == 1:
        server = _AnnouncingServer(config, settings, tls=tls_cert is not None)
        server.run(sockets=sockets)
        return server.started
    export_settings(settings)  # before the workers are spawned: they inherit it
    supervisor = Workers(
        config, sockets, announce=lambda: announce(settings, tls=tls_cert is not None)
    )
    supervisor.run()
    return not supervisor.failed


def _start_metrics(settings: Settings) -> MetricsServer | None:
    """Start the metrics port (its own, loopback by default) when one is configured."""
    if settings.metrics_port is None:
        return None
    from velvetrope.cli.metrics import MetricsServer  # noqa: PLC0415 - prometheus only if on

    try:
        return MetricsServer.start(settings.metrics_host, settings.metrics_port)
    except OSError as exc:
        fail(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port}: "
            f"{exc.strerror or exc}"
        )
