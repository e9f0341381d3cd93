"""``velvetrope serve``: run the auth server with uvicorn."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import typer
import uvicorn

from velvetrope.bootstrap import open_configured_stores
from velvetrope.cli.common import DatabaseOption, clean_errors, err, load_settings, out
from velvetrope.settings import Settings
from velvetrope.stores.registry import describe_database_url
from velvetrope.web.app import create_app
from velvetrope.web.server_limits import limits_of

__all__ = ["serve"]


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that prints its real URL once it is listening (port 0 included)."""

    def __init__(self, config: uvicorn.Config, settings: Settings, *, tls: bool) -> None:
        super().__init__(config)
        self._settings = settings
        self._scheme = "https" if tls else "http"

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                shown = f"[{host}]" if ":" in host else host
                out.print(
                    f"velvetrope listening on {self._scheme}://{shown}:{port} "
                    f"({describe_database_url(self._settings.database_url)})",
                    soft_wrap=True,
                )
        if self._settings.public_origin:
            out.print(f"public origin: {self._settings.public_origin}")


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


def serve(
    host: str = typer.Option(None, help="Address to bind (default 127.0.0.1).", show_default=False),
    port: int = typer.Option(
        None, help="Port (default 8000; 0 picks a free one).", show_default=False
    ),
    database: str = DatabaseOption,
    tls_cert: Path | None = TlsCertOption,
    tls_key: Path | None = TlsKeyOption,
) -> None:
    """Run the auth server."""
    if (tls_cert is None) != (tls_key is None):
        err.print("--tls-cert and --tls-key go together: give both, or neither")
        raise typer.Exit(2)
    settings = load_settings(host=host, port=port, database_url=database)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s %(message)s"
    )
    sockets: list[socket.socket] | None = None
    if settings.port == 0:
        # Bind first, so that the origin (and so iss/aud) names the real port.
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.host, 0))
        settings = settings.model_copy(update={"port": sock.getsockname()[1]})
        sockets = [sock]
    if tls_cert is not None and settings.public_origin is None:
        # Served over https: the origin (iss, aud, CSRF, DPoP's htu) says so.
        shown = f"[{settings.host}]" if ":" in settings.host else settings.host
        settings = settings.model_copy(update={"public_origin": f"https://{shown}:{settings.port}"})
    with clean_errors():
        asyncio.run(_check_stores(settings))
        app = create_app(settings)
    limits = limits_of(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        date_header=True,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        lifespan="on",
        ssl_certfile=None if tls_cert is None else str(tls_cert),
        ssl_keyfile=None if tls_key is None else str(tls_key),
        **limits.uvicorn_options(),  # slow and greedy clients (issue 14)
    )
    limits.configure(config)
    server = _AnnouncingServer(config, settings, tls=tls_cert is not None)
    server.run(sockets=sockets)
    if not server.started:
        raise typer.Exit(1)
