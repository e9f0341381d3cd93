"""With the hybrid gateway on, the command line's sign-outs reach subscribed services too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis

from tests.cli.conftest import Cli
from tests.support.redis import REDIS_URL, delete_prefix, new_prefix, require_redis
from velvetrope.core.gateway import parse_revocation


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    require_redis()
    chosen = new_prefix()
    monkeypatch.setenv("VELVETROPE_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("VELVETROPE_REDIS_PREFIX", chosen)
    monkeypatch.setenv("VELVETROPE_GATEWAY_AUDIENCES", "orders")
    yield chosen
    asyncio.run(delete_prefix(chosen))


def test_HYB_11_users_disable_is_pushed_to_subscribed_services(cli: Cli, prefix: str) -> None:
    """A service listening on the nodes' channel hears the user-wide revocation."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    pubsub = client.pubsub()  # type: ignore[no-untyped-call]
    try:
        pubsub.subscribe(prefix + "notify")
        assert pubsub.get_message(timeout=5)["type"] == "subscribe"
        cli.create_user("ann@example.com")
        cli.ok("users", "disable", "ann@example.com")
        found: list[tuple[str, str, float | None]] = []
        deadline = time.monotonic() + 5
        while not found and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
            if message and message["type"] == "message":
                parsed = parse_revocation(str(message["data"]))
                if parsed is not None:
                    found.append(parsed)
        assert found, "no gateway revocation was pushed"
        kind, _user, cutoff = found[0]
        assert kind == "user"
        assert cutoff is not None
    finally:
        pubsub.close()
        client.close()
