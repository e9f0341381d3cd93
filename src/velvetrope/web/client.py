"""Who is on the other end of a request: its address and its ``User-Agent``."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

__all__ = ["Client", "client_of"]


@dataclass(frozen=True, slots=True)
class Client:
    """The client of a request, as recorded with its sessions and sign-in attempts.

    Attributes:
        ip: Its address (the proxy's ``X-Forwarded-For`` when the proxy is trusted);
            empty when unknown.
        user_agent: Its ``User-Agent`` header; empty when absent.
    """

    ip: str
    user_agent: str


def client_of(connection: HTTPConnection) -> Client:
    """The client of ``connection``."""
    host = connection.client.host if connection.client else ""
    return Client(ip=host, user_agent=connection.headers.get("user-agent", ""))
