"""The limits on slow and greedy clients: settings, the body deadline, uvicorn's options.

The end-to-end proof (a slowloris, slow bodies, 1,000 idle connections against a real
server) is tests/e2e/test_slow_clients.py.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from pydantic import ValidationError
from starlette.types import Message, Receive, Scope, Send

from velvetrope import Settings
from velvetrope.web.deadlines import BodyDeadline
from velvetrope.web.errors import RequestTimeout, error_response
from velvetrope.web.server_limits import DEFAULT_LIMITS, limits_of

SCOPE: Scope = {"type": "http", "method": "POST", "path": "/", "headers": []}


async def _reads_the_body(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body"):
        pass


def test_SLOW_03_defaults_are_documented_values(no_env: None) -> None:
    settings = Settings(database_url="memory://")
    options = limits_of(settings).uvicorn_options()
    assert settings.header_timeout == timedelta(seconds=10)
    assert settings.body_timeout == timedelta(seconds=30)
    assert options["timeout_keep_alive"] == 5
    assert options["limit_concurrency"] == 2 * settings.max_connections == 4096
    assert limits_of(settings) == DEFAULT_LIMITS


@pytest.mark.parametrize(
    "bad",
    [
        {"header_timeout": "0"},
        {"body_timeout": "PT11M"},
        {"max_connections": "8"},
        {"max_header_bytes": "8192", "max_cookie_bytes": "8192"},
    ],
)
def test_out_of_range_limits_are_refused(no_env: None, bad: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Settings(database_url="memory://", **bad)  # type: ignore[arg-type]


async def test_SLOW_01_a_body_that_stalls_past_the_deadline_is_a_408() -> None:
    pieces: list[Message] = [{"type": "http.request", "body": b"{", "more_body": True}]

    async def trickle() -> Message:
        if pieces:
            return pieces.pop()
        await asyncio.Event().wait()  # the client sends nothing more
        raise AssertionError("unreachable")

    guarded = BodyDeadline(_reads_the_body, timeout=timedelta(milliseconds=50))
    with pytest.raises(RequestTimeout):
        await guarded(SCOPE, trickle, _no_send)
    answer = error_response(RequestTimeout())
    assert answer.status_code == 408
    assert answer.headers["connection"] == "close"


async def test_a_body_in_time_passes_and_later_reads_are_not_bounded() -> None:
    pieces: list[Message] = [
        {"type": "http.disconnect"},
        {"type": "http.request", "body": b"}", "more_body": False},
        {"type": "http.request", "body": b"{", "more_body": True},
    ]
    seen: list[Message] = []

    async def receive() -> Message:
        return pieces.pop()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await _reads_the_body(scope, receive, send)
        seen.append(await receive())  # e.g. a streaming response waiting for disconnect

    await BodyDeadline(app, timeout=timedelta(milliseconds=50))(SCOPE, receive, _no_send)
    assert seen == [{"type": "http.disconnect"}]


async def _no_send(message: Message) -> None:
    raise AssertionError(message)
