"""Stores that go away under traffic: fail closed, recover by themselves, lose nothing.

TERM-05 and issue 4, end to end. Each test runs a store server of its own (a private
PostgreSQL cluster, or a ``redis-server``) and one real ``velvetrope serve`` on it.
The outage tests drive steady authenticated traffic (a session cookie and a bearer
token, one thread each), stop the store, start it again, and check every answer: a
200, or a 503 ``store_unavailable``; never a 500, never a dropped connection. The
persistence tests restart the store and sign nothing in again: the session must
still work.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx
import pytest

from tests.support.postgres import TempCluster, running_cluster, temp_database
from tests.support.redis import RedisServer, require_redis_server
from tests.support.server import (
    HTTP_TIMEOUT,
    ServerProcess,
    Servers,
    auth,
    login,
    register,
)
from tests.support.services import PASSWORD

pytestmark = pytest.mark.e2e

EMAIL = "ann@example.com"
REDIS_AOF = ("--appendonly", "yes", "--appendfsync", "always")

WARM_UP = 10  # answers per credential before the store goes away
OUTAGE_ANSWERS = 25  # answers per credential while it is away, at least
OUTAGE_SECONDS = 2.0  # how long it stays away, at least
STABLE = 20  # consecutive 200s per credential after the restart that count as recovered
RECOVER_WITHIN = 10.0  # seconds from the store answering again to STABLE 200s
SESSION_CACHE_TTL = 1.0  # seconds: VELVETROPE_SESSION_CACHE_TTL of the nodes (the default)
PHASE_LIMIT = 20.0  # seconds any other phase may take before the test fails
TRAFFIC_LIMIT = 90.0  # seconds after which the traffic threads stop whatever happens
PACE = 0.005  # seconds each traffic thread waits between requests


def node_env(redis_url: str | None = None, cache_ttl: float = SESSION_CACHE_TTL) -> dict[str, str]:
    env = {
        "VELVETROPE_PASSWORD_HASH_PROFILE": "owasp-minimum",
        "VELVETROPE_SESSION_CACHE_TTL": str(cache_ttl),
    }
    if redis_url is not None:
        env["VELVETROPE_REDIS_URL"] = redis_url
    return env


def bearer_for(http: httpx.Client) -> tuple[dict[str, str], str]:
    """Sign in for tokens; return the bearer header and the refresh token."""
    response = http.post(
        "/auth/token", data={"grant_type": "password", "username": EMAIL, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}, tokens["refresh_token"]


def refreshes(http: httpx.Client, refresh_token: str) -> bool:
    response = http.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )
    return response.status_code == 200


def error_code(response: httpx.Response) -> str:
    if response.status_code < 400:
        return ""
    try:
        body = response.json()
    except ValueError:
        return "(not JSON)"
    return str(body.get("error", "(no code)")) if isinstance(body, dict) else "(not an object)"


def status_after_outage(http: httpx.Client, headers: Mapping[str, str]) -> int:
    """Poll ``/auth/me`` until it answers other than 503; fail on anything but 503 before."""
    deadline = time.monotonic() + RECOVER_WITHIN
    while True:
        response = http.get("/auth/me", headers=headers)
        if response.status_code != 503:
            return response.status_code
        assert error_code(response) == "store_unavailable", response.text
        if time.monotonic() > deadline:
            pytest.fail(f"still 503 {RECOVER_WITHIN} s after the store came back")
        time.sleep(0.05)


# --- steady traffic ----------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One request of the traffic: when it was sent and answered, and how."""

    sent: float
    done: float
    status: int  # 0: no HTTP answer at all
    code: str  # the body's "error", or the transport error's class name


class Traffic:
    """``GET /auth/me`` in a loop from one thread per credential, until the block ends."""

    def __init__(self, node: ServerProcess, credentials: Mapping[str, Mapping[str, str]]) -> None:
        self.answers: dict[str, list[Answer]] = {name: [] for name in credentials}
        self._stop = threading.Event()
        self._until = time.monotonic() + TRAFFIC_LIMIT
        self._threads = [
            threading.Thread(target=self._run, args=(node.client(), name, dict(headers)))
            for name, headers in credentials.items()
        ]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(HTTP_TIMEOUT + 5)
        assert not any(thread.is_alive() for thread in self._threads)

    def _run(self, client: httpx.Client, name: str, headers: dict[str, str]) -> None:
        with client:
            while not self._stop.is_set() and time.monotonic() < self._until:
                sent = time.monotonic()
                try:
                    response = client.get("/auth/me", headers=headers)
                    status, code = response.status_code, error_code(response)
                except httpx.TransportError as exc:
                    status, code = 0, type(exc).__name__
                self.answers[name].append(Answer(sent, time.monotonic(), status, code))
                self._stop.wait(PACE)

    def between(self, name: str, start: float, end: float = float("inf")) -> list[Answer]:
        """The answers to requests sent at or after ``start`` and answered by ``end``."""
        return [a for a in list(self.answers[name]) if a.sent >= start and a.done <= end]

    def wait_until(self, done: Callable[[str], bool], within: float, what: str) -> None:
        """Poll until ``done(name)`` holds for every credential; fail after ``within`` s."""
        deadline = time.monotonic() + within
        while not all(done(name) for name in self.answers):
            if time.monotonic() > deadline or not all(t.is_alive() for t in self._threads):
                pytest.fail(f"no {what} within {within} s: {self.tally()}")
            time.sleep(0.02)

    def tally(self) -> dict[str, Counter[tuple[int, str]]]:
        return {name: tally(list(answers)) for name, answers in self.answers.items()}


def tally(answers: list[Answer]) -> Counter[tuple[int, str]]:
    return Counter((a.status, a.code) for a in answers)


def recovered(traffic: Traffic, since: float) -> Callable[[str], bool]:
    def check(name: str) -> bool:
        tail = traffic.between(name, since)[-STABLE:]
        return len(tail) == STABLE and all(a.status == 200 for a in tail)

    return check


def outage_under_traffic(
    label: str,
    node: ServerProcess,
    stop: Callable[[], None],
    start: Callable[[], None],
    *,
    cache_ttl: float = SESSION_CACHE_TTL,
) -> None:
    """Sign in, run traffic, stop the store, start it again; check and print every phase."""
    pid = node.process.pid
    with node.client() as http:
        register(http, EMAIL)
        secret = login(http, EMAIL)
        bearer, _ = bearer_for(http)
        with Traffic(node, {"cookie": auth(secret), "bearer": bearer}) as traffic:
            began = time.monotonic()
            traffic.wait_until(
                lambda n: len(traffic.between(n, began)) >= WARM_UP, PHASE_LIMIT, "traffic"
            )
            stopping = time.monotonic()
            stop()
            down = time.monotonic()
            traffic.wait_until(
                lambda n: (
                    len(traffic.between(n, down)) >= OUTAGE_ANSWERS
                    and time.monotonic() - down >= OUTAGE_SECONDS
                ),
                PHASE_LIMIT,
                "answers during the outage",
            )
            ready = http.get("/ready")
            assert (ready.status_code, error_code(ready)) == (503, "store_unavailable")
            starting = time.monotonic()
            start()
            up = time.monotonic()
            traffic.wait_until(recovered(traffic, up), RECOVER_WITHIN, "recovery")
        assert http.get("/ready").status_code == 200
    assert node.process.poll() is None, "velvetrope exited"
    assert node.process.pid == pid  # the same process throughout: no restart

    print(f"\n[{label} outage] stopped for {starting - stopping:.2f} s")
    for name, answers in traffic.answers.items():
        before = [a for a in answers if a.done < stopping]
        outage = traffic.between(name, down, starting)
        after = traffic.between(name, up)
        first_ok = next(a.done for a in after if a.status == 200) - up
        print(
            f"  {name}: {len(answers)} requests; before {dict(tally(before))}; "
            f"outage {dict(tally(outage))}; after the restart {dict(tally(after))}, "
            f"first 200 {first_ok * 1000:.0f} ms after the store was back"
        )
        # Every answer, phases in between included: a 200 (a live credential) or a
        # 503 with its code. Never a 500, a 401 or a dropped connection.
        assert set(tally(answers)) <= {(200, ""), (503, "store_unavailable")}, tally(answers)
        assert len(before) >= WARM_UP
        assert {a.status for a in before} == {200}
        assert len(outage) >= OUTAGE_ANSWERS
    # A bearer token verifies on its own while the revocation list is fresh (200),
    # then fails closed (503); both are counted above. A session is read from the store,
    # or from the node's near-cache while its push channel is up: between the store
    # going and the node seeing its channel drop (milliseconds), a session read before
    # the outage may still answer 200, never later than the cache's staleness bound
    # (VELVETROPE_SESSION_CACHE_TTL, a 1 s default: an entry was read before the store
    # went). From the first 503 on, every cookie request fails closed.
    cookie_outage = traffic.between("cookie", down, starting)
    statuses = [a.status for a in cookie_outage]
    assert 503 in statuses
    noticed = statuses.index(503)
    assert all(a.sent < down + cache_ttl for a in cookie_outage[:noticed])
    assert set(statuses[noticed:]) == {503}


# --- PostgreSQL ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[TempCluster]:
    """A private PostgreSQL server these tests stop and start; gone after the module."""
    with running_cluster() as server:
        yield server


@pytest.fixture
def cluster_database(cluster: TempCluster) -> Iterator[str]:
    """A new database on the private server (running again afterwards), dropped after."""
    with temp_database(cluster.url) as url:
        yield url
        if not cluster.is_running():
            cluster.start()


def start_on_postgres(servers: Servers, url: str) -> ServerProcess:
    node = servers.spawn("--port", "0", "--database", url, env=node_env())
    node.start()
    return node


def test_TERM_05_a_postgres_outage_under_traffic_fails_closed_and_recovers_without_a_restart(
    cluster: TempCluster, cluster_database: str, servers: Servers
) -> None:
    node = start_on_postgres(servers, cluster_database)
    outage_under_traffic("PostgreSQL", node, lambda: cluster.stop("immediate"), cluster.start)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_postgres_restart_loses_no_session(
    cluster: TempCluster, cluster_database: str, servers: Servers, mode: str
) -> None:
    """``immediate`` is a crash: what was committed comes back from the WAL."""
    node = start_on_postgres(servers, cluster_database)
    with node.client() as http:
        register(http, EMAIL)
        secret = login(http, EMAIL)
        _, refresh_token = bearer_for(http)
        cluster.restart(mode)
        assert status_after_outage(http, auth(secret)) == 200
        assert refreshes(http, refresh_token)  # the token family survived too


# --- Redis ---------------------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A stopped ``redis-server`` of the test's own, in the test's tmp dir."""
    server = RedisServer(require_redis_server(), tmp_path)
    yield server
    server.stop()


@pytest.mark.parametrize("cache_ttl", [SESSION_CACHE_TTL, 0.0], ids=["near-cache", "no-cache"])
def test_TERM_05_a_redis_outage_under_traffic_fails_closed_and_recovers_without_a_restart(
    redis_server: RedisServer, servers: Servers, database: Path, cache_ttl: float
) -> None:
    """Without the near-cache (``VELVETROPE_SESSION_CACHE_TTL=0``) not one cookie request
    of the outage gets through: the first answer after the store went is a 503."""
    redis_server.start(*REDIS_AOF)  # persistence on: the same session works afterwards
    node = servers.start(database, env=node_env(redis_server.url, cache_ttl))
    outage_under_traffic(
        "Redis",
        node,
        redis_server.stop,
        lambda: redis_server.start(*REDIS_AOF),
        cache_ttl=cache_ttl,
    )


@pytest.mark.parametrize("crash", [False, True], ids=["SIGTERM", "SIGKILL"])
def test_a_redis_restart_with_append_only_persistence_loses_no_session(
    redis_server: RedisServer, servers: Servers, database: Path, crash: bool
) -> None:
    """With ``appendfsync always`` even a crash (SIGKILL) keeps every acknowledged write."""
    redis_server.start(*REDIS_AOF)
    node = servers.start(database, env=node_env(redis_server.url))
    with node.client() as http:
        register(http, EMAIL)
        secret = login(http, EMAIL)
        _, refresh_token = bearer_for(http)
        (redis_server.kill if crash else redis_server.stop)()
        redis_server.start(*REDIS_AOF)
        assert status_after_outage(http, auth(secret)) == 200
        assert refreshes(http, refresh_token)  # the token family survived too


def test_a_redis_restart_without_persistence_loses_the_sessions(
    redis_server: RedisServer, servers: Servers, database: Path
) -> None:
    """The control for the test above: its restart really empties a Redis that keeps nothing."""
    redis_server.start()
    node = servers.start(database, env=node_env(redis_server.url))
    with node.client() as http:
        register(http, EMAIL)
        secret = login(http, EMAIL)
        redis_server.stop()
        redis_server.start()
        assert status_after_outage(http, auth(secret)) == 401
