"""The hybrid gateway under load: what the edge check costs, and how fast a sign-out bites.

Starts, on 127.0.0.1 only: two velvetrope nodes (the benchmark app, as ``velvetrope
serve`` runs it) sharing one SQLite file and a Redis prefix, the example service
(``examples/orders_service.py``, subscribed to the nodes' revocation pushes) and nginx
running the configuration shipped in ``deploy/nginx/`` with these ports plus an
unguarded ``/direct/`` path to the same service. Then, in one run:

1. **Throughput and latency.** wrk through the gateway (``/api/orders/ping``, several
   sessions, a session cookie per request from ``rotating_bearer.lua``) and straight
   through nginx to the service (``/direct/ping``), alternating for ``--rounds``:
   req/s ratio gateway / direct (target: 0.5 or more on this 2-core machine) and the
   latency the gateway adds at p50 and p99 (medians over the rounds).
2. **Mints.** Tokens signed (``/ready``) during one wrk run of ``--mint-duration``
   seconds (240) through the gateway with ``--ttl`` second tokens (60, velvetrope's
   default lifetime), per session per minute and per token lifetime, with the mint cache
   on (target: at most about one per lifetime and audience; the cache renews a token
   ``min(5 s, ttl/6)`` before it expires, so the floor is ``ttl / (ttl - that)``, 1.09 at
   60 s). The run uses 2 connections: with the cache on, the mints do not depend on the
   request rate. With the cache off (nodes started with
   ``VELVETROPE_GATEWAY_MINT_CACHE=0``), every request mints: that figure comes from
   the throughput runs.
3. **Sign-out to the first 401 at the edge**, ``--trials`` times (100): sign in at the
   edge, find the node nginx sends this session's checks to (node A: the one whose
   ``/ready`` counters move), sign out on the other one (node B), then request through
   the edge, so through node A, until it answers 401 (target: p99 under 50 ms). The
   200s answered after the sign-out's 204 are counted: each is a token served for a
   signed-out session (target: none).
4. **Sign-out to the service refusing the session's already-minted token**, subscribed
   to the pushes, ``--trials`` times (and the requests it still accepted after the 204).

Usage::

    .venv/bin/python benchmarks/gateway.py [--duration 5] [--rounds 3] [--sessions 8]
                                           [--connections 16] [--trials 100] [--ttl 60]
                                           [--mint-duration 240] [--results DIR] [--smoke]

``--smoke`` (a few seconds of each, 10 trials) checks that it all works and writes
nothing; a full run writes ``gateway.json`` and ``gateway.md`` in ``--results``
(``benchmarks/results``), each with the command line that produced it.
Redis: ``VELVETROPE_BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from velvetrope.lab.gateway import GatewayEdge, gateway_edge
from velvetrope.lab.servers import Client
from velvetrope.lab.services import HOST, ServiceUnavailable, free_port, stop_process
from velvetrope.lab.wrk import ROTATION_SCRIPT, WrkResult, run_wrk

ROOT = Path(__file__).resolve().parents[1]
SERVICE = ROOT / "examples" / "orders_service.py"
RESULTS = ROOT / "benchmarks" / "results"
REDIS_URL = os.environ.get("VELVETROPE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
GUARDED = "/api/orders/ping"
DIRECT = "/direct/ping"
MINT_CONNECTIONS = 2


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(len(ordered) * fraction - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


@contextlib.contextmanager
def example_service(port: int, edge: GatewayEdge) -> Iterator[str]:
    """The example service on ``port``, subscribed to the nodes' pushes."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VELVETROPE_")},
        "ORDERS_JWKS_URL": f"{edge.nodes[0].origin}/auth/gateway/jwks.json",
        "ORDERS_ISSUER": edge.origin,
        "ORDERS_REDIS_URL": REDIS_URL,
        "ORDERS_REDIS_PREFIX": edge.redis_prefix,
    }
    proc = subprocess.Popen(
        [sys.executable, str(SERVICE), "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = Client(f"http://{HOST}:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                if client.request("GET", "/health").status == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ServiceUnavailable("the example service did not start")
            time.sleep(0.05)
        yield f"http://{HOST}:{port}"
    finally:
        client.close()
        stop_process(proc)


@contextlib.contextmanager
def stack(scratch: Path, *, cached: bool, ttl: timedelta) -> Iterator[tuple[GatewayEdge, str]]:
    """Two nodes, nginx and the example service; the Redis keys go afterwards."""
    port = free_port()
    with gateway_edge(
        scratch,
        REDIS_URL,
        cached=cached,
        ttl=ttl,
        upstream=f"{HOST}:{port}",
        rewrite="",
        direct="/direct/",
    ) as edge:
        try:
            with example_service(port, edge) as service:
                yield edge, service
        finally:
            drop_prefix(edge.redis_prefix)


def drop_prefix(prefix: str) -> None:
    """Delete the run's Redis keys."""
    import redis  # noqa: PLC0415 - only the benchmark's cleanup needs it

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def sign_in_many(edge: GatewayEdge, count: int, scratch: Path) -> tuple[Path, str]:
    """Sign in ``count`` times at the edge (each session checked once through the
    gateway); a file with one cookie value per line, and the cookie's name."""
    client = edge.client()
    client.sign_up()
    values = []
    name = ""
    try:
        for _ in range(count):
            cookie, _ = edge.sign_in(client)
            name, value = cookie.split("=", 1)
            values.append(value)
            reply = client.request("GET", GUARDED, headers={"Cookie": cookie})
            if reply.status != 200:
                raise ServiceUnavailable(
                    f"the gateway answered {reply.status}: {reply.body[:200]!r}"
                )
    finally:
        client.close()
    path = scratch / f"sessions-{edge.nginx.port}.txt"
    path.write_text("\n".join(values) + "\n")
    return path, name


def wrk_gateway(
    edge: GatewayEdge,
    sessions: Path,
    cookie: str,
    start: int,
    *,
    seconds: float,
    connections: int,
) -> tuple[WrkResult, int]:
    """One wrk run through the gateway, a session cookie per request; the result and the
    next rotation start."""
    result, output = run_wrk(
        edge.origin + GUARDED,
        seconds=seconds,
        connections=connections,
        threads=2,
        script=[str(ROTATION_SCRIPT), "--", str(sessions), str(start), "2", "Cookie", f"{cookie}="],
    )
    following = start
    for line in output.splitlines():
        if line.startswith("rotating_bearer: next "):
            following = int(line.rsplit(" ", 1)[1])
    return result, following


def renew_before(ttl: float) -> float:
    """Seconds before expiry the mint cache renews a token (``settings.gateway_policy``)."""
    return min(5.0, ttl / 6)


def mints(edge: GatewayEdge, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """Tokens signed during one ``--mint-duration`` run through the gateway (cache on)."""
    sessions, cookie = sign_in_many(edge, args.sessions, scratch)
    before = edge.minted()
    result, _ = wrk_gateway(
        edge, sessions, cookie, 0, seconds=args.mint_duration, connections=MINT_CONNECTIONS
    )
    minted = edge.minted() - before
    if result.non_2xx or any(result.socket_errors.values()):
        raise ServiceUnavailable(f"wrk saw errors on {result.endpoint}: {result}")
    return {
        "seconds": result.seconds,
        "connections": MINT_CONNECTIONS,
        "requests": result.requests,
        "minted": minted,
        "mints_per_session_per_minute": minted / args.sessions * 60 / result.seconds,
        "mints_per_session_per_lifetime": minted / args.sessions / (result.seconds / args.ttl),
        "floor_per_lifetime": args.ttl / (args.ttl - renew_before(args.ttl)),
    }


def throughput(edge: GatewayEdge, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """Gateway vs direct, alternating; the mints signed during the gateway runs."""
    sessions, cookie = sign_in_many(edge, args.sessions, scratch)
    gateway_runs: list[WrkResult] = []
    direct_runs: list[WrkResult] = []
    minted = 0
    start = 0
    for _ in range(args.rounds):
        before = edge.minted()
        result, start = wrk_gateway(
            edge, sessions, cookie, start, seconds=args.duration, connections=args.connections
        )
        minted += edge.minted() - before
        gateway_runs.append(result)
        direct, _ = run_wrk(
            edge.origin + DIRECT, seconds=args.duration, connections=args.connections, threads=2
        )
        direct_runs.append(direct)
    seconds = sum(r.seconds for r in gateway_runs)
    for run in gateway_runs + direct_runs:
        if run.non_2xx or any(run.socket_errors.values()):
            raise ServiceUnavailable(f"wrk saw errors on {run.endpoint}: {run}")
    return {
        "gateway_rps": statistics.median(r.rps for r in gateway_runs),
        "direct_rps": statistics.median(r.rps for r in direct_runs),
        "ratio": statistics.median(
            g.rps / d.rps for g, d in zip(gateway_runs, direct_runs, strict=True)
        ),
        "added_p50_ms": statistics.median(
            g.latency_p50_ms - d.latency_p50_ms
            for g, d in zip(gateway_runs, direct_runs, strict=True)
        ),
        "added_p99_ms": statistics.median(
            g.latency_p99_ms - d.latency_p99_ms
            for g, d in zip(gateway_runs, direct_runs, strict=True)
        ),
        "gateway_p50_ms": statistics.median(r.latency_p50_ms for r in gateway_runs),
        "gateway_p99_ms": statistics.median(r.latency_p99_ms for r in gateway_runs),
        "direct_p50_ms": statistics.median(r.latency_p50_ms for r in direct_runs),
        "direct_p99_ms": statistics.median(r.latency_p99_ms for r in direct_runs),
        "requests": sum(r.requests for r in gateway_runs),
        "minted": minted,
        "mints_per_session_per_minute": minted / args.sessions * 60 / seconds,
        "seconds": seconds,
    }


@dataclass(frozen=True, slots=True)
class SignOut:
    """One sign-out trial.

    Attributes:
        after_send: Seconds from sending the sign-out to the first refusal.
        after_204: Seconds from the sign-out's 204 to the first refusal.
        served: Requests answered 200 after the 204 (tokens served at the edge, or the
            revoked token still accepted by the service).
        node_a: The node the edge asked for this session's checks.
    """

    after_send: float
    after_204: float
    served: int
    node_a: int


class SignOutTrials:
    """Sign-out on node B (the node the edge does not ask for this session) to the first
    401 through the edge, so through node A, or to the service refusing the session's
    already-minted token."""

    def __init__(self, edge: GatewayEdge, service: str) -> None:
        self.edge = edge
        self.browser = edge.client()
        self.nodes = [node.client() for node in edge.nodes]
        self.backend = Client(service)

    def close(self) -> None:
        for client in (self.browser, *self.nodes, self.backend):
            client.close()

    def _counters(self) -> list[tuple[int, int]]:
        """Each node's tokens minted and mint-cache hits (``/ready``)."""
        found = []
        for client in self.nodes:
            reply = client.request("GET", "/ready")
            if reply.status != 200:
                raise ServiceUnavailable(f"/ready answered {reply.status}")
            gateway = reply.json()["gateway"]
            found.append((int(gateway["minted"]), int(gateway["mint_cache"]["hits"])))
        return found

    def _node_a(self, cookie: str) -> int:
        """The node the edge asks for this session (nginx hashes a session's checks to
        one node): the one whose counters move while the edge lets the session through."""
        before = self._counters()
        for _ in range(2):  # a mint, then a cache hit: node A now holds a cached token
            if self.browser.request("GET", GUARDED, headers={"Cookie": cookie}).status != 200:
                raise ServiceUnavailable("the gateway refused a live session")
        after = self._counters()
        moved = [i for i, (b, a) in enumerate(zip(before, after, strict=True)) if a != b]
        if len(moved) != 1:
            raise ServiceUnavailable(f"expected one node to check the session, saw {moved}")
        return moved[0]

    def _minted(self, cookie: str, node: int) -> dict[str, str]:
        """The session's token as ``node`` hands it out, checked at the service."""
        answer = self.nodes[node].request(
            "GET",
            "/auth/gateway",
            headers={
                "Cookie": cookie,
                "X-Original-Method": "GET",
                "X-Velvetrope-Audience": "orders",
            },
        )
        bearer = {"Authorization": f"Bearer {answer.header('X-Velvetrope-Token')[0]}"}
        if self.backend.request("GET", GUARDED, headers=bearer).status != 200:
            raise ServiceUnavailable("the service refused a live token")
        return bearer

    def trial(self, *, at_edge: bool) -> SignOut:
        """One sign-out on node B, probed through the edge (or at the service)."""
        cookie, csrf = self.edge.sign_in(self.browser)
        node_a = self._node_a(cookie)
        node_b = next(i for i in range(len(self.nodes)) if i != node_a)
        bearer = self._minted(cookie, node_a)
        sent = time.perf_counter()
        out = self.nodes[node_b].request(
            "POST",
            "/auth/logout",
            headers={"Cookie": cookie, "Origin": self.edge.origin, "X-CSRF-Token": csrf},
        )
        answered = time.perf_counter()
        if out.status != 204:
            raise ServiceUnavailable(f"sign-out answered {out.status}")
        probe_headers = {"Cookie": cookie, "Accept": "application/json"} if at_edge else bearer
        probe = self.browser if at_edge else self.backend
        served = 0
        while (status := probe.request("GET", GUARDED, headers=probe_headers).status) != 401:
            if status != 200:
                raise ServiceUnavailable(f"a signed-out session got {status}, not 200 or 401")
            served += 1
            if time.perf_counter() - sent > 5:
                raise ServiceUnavailable("a signed-out session was still accepted after 5 s")
        refused = time.perf_counter()
        return SignOut(refused - sent, refused - answered, served, node_a)


def sign_out_trials(edge: GatewayEdge, service: str, trials: int) -> dict[str, list[SignOut]]:
    """``trials`` sign-outs measured at the edge, and as many at the service."""
    runner = SignOutTrials(edge, service)
    try:
        at_edge = [runner.trial(at_edge=True) for _ in range(trials)]
        at_service = [runner.trial(at_edge=False) for _ in range(trials)]
    finally:
        runner.close()
    return {"edge": at_edge, "service": at_service}


def served_after(trials: Sequence[SignOut]) -> dict[str, int]:
    """How many 200s came after the sign-out's 204, over the trials."""
    return {
        "trials": len(trials),
        "trials_with_a_200": sum(1 for t in trials if t.served),
        "total": sum(t.served for t in trials),
        "max_in_one_trial": max((t.served for t in trials), default=0),
    }


def summary(seconds: list[float]) -> dict[str, float]:
    """p50, p99 and max in milliseconds."""
    return {
        "p50_ms": statistics.median(seconds) * 1000,
        "p99_ms": percentile(seconds, 0.99) * 1000,
        "max_ms": max(seconds) * 1000,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument(
        "--ttl", type=float, default=60.0, help="internal token lifetime (s), 5 to 600"
    )
    parser.add_argument(
        "--mint-duration", type=float, default=240.0, help="seconds of the mints run"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="output directory")
    parser.add_argument("--smoke", action="store_true", help="a short check that writes nothing")
    args = parser.parse_args(argv)
    if not 5 <= args.ttl <= 600:  # VELVETROPE_GATEWAY_TOKEN_TTL's bounds
        parser.error("--ttl must be between 5 and 600 seconds")
    if args.smoke:
        args.duration, args.rounds, args.sessions, args.trials = 1.0, 1, 4, 10
        args.connections, args.mint_duration = 4, 2.0
    return args


def _served(counts: dict[str, int]) -> str:
    if not counts["total"]:
        return f"none: the first request after the 204 was refused in all {counts['trials']} trials"
    return (
        f"{counts['total']} in {counts['trials_with_a_200']} of {counts['trials']} trials "
        f"(at most {counts['max_in_one_trial']} in one)"
    )


def report(results: dict[str, Any]) -> str:
    """The figures as Markdown."""
    on, off, mint = results["cache_on"], results["cache_off"], results["mints"]
    edge, service = results["signout_edge"], results["signout_service"]
    ttl = results["ttl_seconds"]
    return "\n".join(
        [
            f"# Hybrid gateway benchmark ({results['when']})",
            "",
            f"Two nodes (SQLite + Redis), nginx {results['nginx']}, the example service; "
            f"{results['sessions']} sessions, {results['connections']} connections, "
            f"{results['rounds']} x {results['duration']} s per side, {ttl:.0f} s tokens. "
            f"Load average at the start: {results['loadavg_at_start']}. "
            "Measured on a shared, busy 2-core machine: read the ratios, not the absolutes.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| through-gateway req/s, cache on | {on['gateway_rps']:,.0f} |",
            f"| nginx -> service direct req/s (same run) | {on['direct_rps']:,.0f} |",
            f"| ratio gateway / direct (target >= 0.5) | {on['ratio']:.2f} |",
            f"| latency added at p50 / p99 | {on['added_p50_ms']:.2f} ms / "
            f"{on['added_p99_ms']:.2f} ms |",
            f"| mints per session per {ttl:.0f} s token lifetime, cache on, "
            f"{mint['seconds']:.0f} s run (target <= about 1; floor "
            f"{mint['floor_per_lifetime']:.2f}) | {mint['mints_per_session_per_lifetime']:.2f} "
            f"({mint['minted']} mints, {mint['mints_per_session_per_minute']:.2f} per session "
            "per minute) |",
            f"| mints per session per minute, cache off | "
            f"{off['mints_per_session_per_minute']:,.0f} |",
            f"| ratio gateway / direct, cache off | {off['ratio']:.2f} |",
            f"| sign-out on node B -> first 401 at the edge through node A, "
            f"{len(results['edge_trials'])} trials (target p99 < 50 ms) | p50 "
            f"{edge['p50_ms']:.1f} ms, p99 {edge['p99_ms']:.1f} ms, max "
            f"{edge['max_ms']:.1f} ms |",
            f"| the same, counted from the sign-out's 204 | p50 "
            f"{results['signout_edge_after_204']['p50_ms']:.1f} ms, p99 "
            f"{results['signout_edge_after_204']['p99_ms']:.1f} ms |",
            "| tokens served at the edge after the sign-out's 204, requests sent back to back "
            f"(target: none) | "
            f"{_served(results['signout_edge_served'])} |",
            f"| sign-out -> the subscribed service refuses the minted token | p50 "
            f"{service['p50_ms']:.1f} ms, p99 {service['p99_ms']:.1f} ms, max "
            f"{service['max_ms']:.1f} ms (the token had up to {ttl:.0f} s left) |",
            f"| the same, counted from the sign-out's 204 | p50 "
            f"{results['signout_service_after_204']['p50_ms']:.1f} ms, p99 "
            f"{results['signout_service_after_204']['p99_ms']:.1f} ms |",
            "| requests (sent back to back) the service still accepted after the sign-out's "
            f"204 | "
            f"{_served(results['signout_service_served'])} |",
            "",
            "Node A (the node nginx asks for the session; the sign-out went to the other): "
            + ", ".join(
                f"node {node} in {results['edge_trials_node_a'].count(node)} trials"
                for node in sorted(set(results["edge_trials_node_a"]))
            )
            + ".",
            "",
            f"Command: `{results['command']}`",
            "",
        ]
    )


def command_line(argv: Sequence[str]) -> str:
    """The command that reproduces this run, as a shell would take it."""
    return shlex.join(["python", "benchmarks/gateway.py", *argv])


def source() -> str:
    """The commit measured, and whether ``src/`` or ``benchmarks/`` differ from it (as
    ``run.py`` records it)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(ROOT), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    changed = git("status", "--porcelain", "--", "src", "benchmarks")
    return f"{commit} + uncommitted changes" if changed else commit


def main(argv: Sequence[str] | None = None) -> int:
    """Run it all; print the figures (and, unless ``--smoke``, write them)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    ttl = timedelta(seconds=args.ttl)
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False)
    results: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command_line(arguments),
        "source": source(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "nginx": nginx.stderr.strip().rsplit("/", 1)[-1],
        "sessions": args.sessions,
        "connections": args.connections,
        "rounds": args.rounds,
        "duration": args.duration,
        "ttl_seconds": args.ttl,
    }
    with tempfile.TemporaryDirectory(prefix="vr-gateway-bench-") as tmp:
        scratch = Path(tmp)
        with stack(scratch, cached=True, ttl=ttl) as (edge, service):
            results["cache_on"] = throughput(edge, args, scratch)
            results["mints"] = mints(edge, args, scratch)
            trials = sign_out_trials(edge, service, args.trials)
        with stack(scratch, cached=False, ttl=ttl) as (edge, _service):
            results["cache_off"] = throughput(edge, args, scratch)
    at_edge, at_service = trials["edge"], trials["service"]
    results["edge_trials"] = [t.after_send for t in at_edge]
    results["service_trials"] = [t.after_send for t in at_service]
    results["edge_trials_node_a"] = [t.node_a for t in at_edge]
    results["signout_edge"] = summary([t.after_send for t in at_edge])
    results["signout_service"] = summary([t.after_send for t in at_service])
    results["signout_edge_after_204"] = summary([t.after_204 for t in at_edge])
    results["signout_service_after_204"] = summary([t.after_204 for t in at_service])
    results["signout_edge_served"] = served_after(at_edge)
    results["signout_service_served"] = served_after(at_service)
    text = report(results)
    print(text)
    if not args.smoke:
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / "gateway.json").write_text(json.dumps(results, indent=2) + "\n")
        (args.results / "gateway.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
