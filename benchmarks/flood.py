"""Sign-ins under pressure: authenticated traffic before and during a flood of sign-ins.

One server (SQLite, the real argon2id profile, ``run.py``'s benchmark app), a few dozen
accounts, then:

1. **before**: wrk against ``/bench/guarded`` (a session cookie, ``AuthMiddleware``)
   with 1 connection, then with 32;
2. **during**: the same two wrk runs while a flood of ``POST /auth/login`` runs:
   ``--flood-workers`` clients, each signing in to a random account with the right
   password (``--correct`` of the time) or a wrong one, from a random address among
   ``--addresses`` sent in ``X-Forwarded-For`` (the server trusts it from 127.0.0.1,
   as behind a proxy), so the per-account and per-address throttles see many keys and
   hashing really runs (the server allows ``--free-failures`` per account, 20 by
   default, and 1,000 per address, so throttling does not refuse it all). A client
   that is refused (503 shed, 429 throttled) waits ``--retry-pause`` before its next
   attempt, like a real one would; it never honours the full ``Retry-After``.

It prints and writes (``benchmarks/results/flood.json``): sign-ins per second, the
share of attempts refused by load shedding (503 ``hashing_busy``) and by throttling
(429), and the protected endpoint's req/s and p99 before and during the flood, with
their ratio. The target: during the flood protected traffic keeps 50% or more.

Usage::

    .venv/bin/python benchmarks/flood.py [--duration 10] [--accounts 48]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

import run

HERE: Final = Path(__file__).resolve().parent
TARGET: Final = 0.50


@dataclass
class FloodStats:
    """What the flood saw, counted while the measured window was open."""

    statuses: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    counting: bool = False

    def record(self, outcome: str, latency_ms: float) -> None:
        if self.counting:
            self.statuses[outcome] += 1
            self.latencies_ms.append(latency_ms)


def classify(response: httpx.Response, correct: bool) -> str:
    """``signed_in``, ``wrong_password``, ``shed`` (503), ``throttled`` (429) or ``other``."""
    if response.status_code == 200 and correct:
        return "signed_in"
    if response.status_code == 401 and not correct:
        return "wrong_password"
    if response.status_code == 503:
        return "shed"
    if response.status_code == 429:
        return "throttled"
    return f"other_{response.status_code}"


async def flood(
    origin: str,
    accounts: list[str],
    args: argparse.Namespace,
    stats: FloodStats,
    *,
    stop: threading.Event,
    active: threading.Event,
) -> None:
    """Run the sign-in flood until ``stop`` is set."""
    rng = secrets.SystemRandom()
    addresses = [f"10.{n // 250}.{n % 250}.{rng.randrange(1, 250)}" for n in range(args.addresses)]
    limits = httpx.Limits(max_connections=args.flood_workers)
    async with httpx.AsyncClient(base_url=origin, timeout=30, limits=limits) as client:

        async def worker() -> None:
            while not stop.is_set():
                if not active.is_set():  # between flood windows
                    await asyncio.sleep(0.05)
                    continue
                email = rng.choice(accounts)
                correct = rng.random() < args.correct
                password = run.PASSWORD if correct else f"wrong {rng.random()}"
                started = time.perf_counter()
                response = await client.post(
                    "/auth/login",
                    json={"email": email, "password": password},
                    headers={"X-Forwarded-For": rng.choice(addresses)},
                )
                client.cookies.clear()
                outcome = classify(response, correct)
                stats.record(outcome, (time.perf_counter() - started) * 1000)
                if outcome in ("shed", "throttled"):
                    await asyncio.sleep(args.retry_pause * (0.5 + rng.random()))

        tasks = [asyncio.create_task(worker()) for _ in range(args.flood_workers)]
        await asyncio.to_thread(stop.wait)
        await asyncio.gather(*tasks, return_exceptions=True)


def register_accounts(server: run.Server, count: int) -> list[str]:
    """Create ``count`` accounts, each from an address of its own (sign-ups are throttled
    per address)."""
    emails = []
    for n in range(count):
        email = f"flood{n}@example.com"
        reply = server.request(
            "POST",
            "/auth/register",
            json_body={"email": email, "password": run.PASSWORD},
            headers={"X-Forwarded-For": f"192.0.2.{n % 250 + 1}"},
        )
        if reply.status not in {201, 409}:
            raise run.BenchError(f"register answered {reply.status}: {reply.body[:200]!r}")
        emails.append(email)
    return emails


def protected(
    server: run.Server,
    credential: run.Credential,
    connections: int,
    duration: int,
    cpus: tuple[int, ...] = (),
) -> dict[str, Any]:
    load = run.Load(duration, connections, min(2, connections), cpus)
    result = run.run_wrk(server, "guarded", credential, load, duration)
    return {
        "rps": result.rps,
        "p50_ms": result.latency_p50_ms,
        "p99_ms": result.latency_p99_ms,
        "server_cpu_us_per_request": result.server_cpu_us_per_request,
    }


def measure(
    args: argparse.Namespace, server_cpus: tuple[int, ...], load_cpus: tuple[int, ...]
) -> dict[str, Any]:
    case = run.Case(
        "flood",
        "session cookie on SQLite while sign-ins flood in",
        run.sqlite_stores,
        env={
            # Looser than the defaults (5 per account, 100 per address), so that wrong
            # passwords keep hashing instead of being throttled after a few seconds.
            "VELVETROPE_LOGIN_FREE_FAILURES": str(args.free_failures),
            "VELVETROPE_LOGIN_IP_FAILURES": "1000",
            **({"VELVETROPE_PASSWORD_HASH_NICE": str(args.nice)} if args.nice is not None else {}),
            **({"VELVETROPE_PASSWORD_HASH_PROFILE": args.profile} if args.profile else {}),
            **(
                {"VELVETROPE_PASSWORD_HASH_CONCURRENCY": str(args.hash_workers)}
                if args.hash_workers is not None
                else {}
            ),
        },
    )
    if load_cpus:  # the flood client is this process: keep it off the server's CPU too
        os.sched_setaffinity(0, load_cpus)
    with (
        tempfile.TemporaryDirectory(prefix="velvetrope-flood-") as scratch,
        run.running_server(case, Path(scratch), server_cpus) as server,
    ):
        credential = run.session_cookie(server)
        run.verify(server, credential)
        started = time.monotonic()
        accounts = register_accounts(server, args.accounts)
        run.say(f"registered {len(accounts)} accounts in {time.monotonic() - started:.1f} s")
        stats, stop, active = FloodStats(), threading.Event(), threading.Event()
        thread = threading.Thread(
            target=asyncio.run,
            args=(flood(server.origin, accounts, args, stats, stop=stop, active=active),),
            name="flood",
        )
        thread.start()
        # Rounds alternate quiet and flooded windows, so slow drift in the machine's
        # other load falls on both sides alike; each ratio is a median over rounds.
        before: dict[int, list[dict[str, Any]]] = {1: [], 32: []}
        during: dict[int, list[dict[str, Any]]] = {1: [], 32: []}
        window = 0.0
        try:
            for index in range(args.rounds):
                for flooded in (False, True) if index % 2 == 0 else (True, False):
                    if flooded:
                        active.set()
                        time.sleep(2.0)  # let the flood fill the hashing queue
                        stats.counting = True
                        opened = time.monotonic()
                    for c in (1, 32):
                        (during if flooded else before)[c].append(
                            protected(server, credential, c, args.duration, load_cpus)
                        )
                    if flooded:
                        stats.counting = False
                        window += time.monotonic() - opened
                        active.clear()
                        time.sleep(2.0)  # let the queue drain before a quiet window
                ratios = {c: round(during[c][-1]["rps"] / before[c][-1]["rps"], 3) for c in (1, 32)}
                run.say(f"round {index + 1}/{args.rounds}: during/before by connections {ratios}")
        finally:
            stop.set()
            active.set()
            thread.join(60)
        ready = json.loads(server.request("GET", "/ready").body)["caches"]["password_hashing"]
    attempts = sum(stats.statuses.values())
    return {
        "accounts": len(accounts),
        "addresses": args.addresses,
        "flood_workers": args.flood_workers,
        "correct_share": args.correct,
        "window_s": window,
        "attempts": attempts,
        "attempts_per_s": attempts / window,
        "sign_ins_per_s": stats.statuses["signed_in"] / window,
        "wrong_passwords_per_s": stats.statuses["wrong_password"] / window,
        "hashed_per_s": (stats.statuses["signed_in"] + stats.statuses["wrong_password"]) / window,
        "shed_share": stats.statuses["shed"] / attempts if attempts else None,
        "throttled_share": stats.statuses["throttled"] / attempts if attempts else None,
        "statuses": dict(stats.statuses),
        "login_p50_ms": statistics.median(stats.latencies_ms) if stats.latencies_ms else None,
        "hashing": ready,
        "rounds": args.rounds,
        "server_cpus": list(server_cpus) or "any",
        "load_cpus": list(load_cpus) or "any",
        "protected": {str(c): _summary(before[c], during[c]) for c in (1, 32)},
    }


def _summary(before: list[dict[str, Any]], during: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds, and the median of the per-round during/before ratios."""

    def median(runs: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    ratios = [d["rps"] / b["rps"] for b, d in zip(before, during, strict=True)]
    return {
        "before": {k: median(before, k) for k in ("rps", "p50_ms", "p99_ms")},
        "during": {k: median(during, k) for k in ("rps", "p50_ms", "p99_ms")},
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "runs_before": before,
        "runs_during": during,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"sign-in flood: {result['flood_workers']} clients, {result['accounts']} accounts, "
        f"{result['addresses']} addresses, {result['correct_share']:.0%} correct passwords",
        f"  attempts/s {result['attempts_per_s']:.1f}  sign-ins/s {result['sign_ins_per_s']:.1f}  "
        f"wrong passwords/s {result['wrong_passwords_per_s']:.1f}  "
        f"shed (503) {result['shed_share']:.1%}  throttled (429) {result['throttled_share']:.1%}",
        "",
        "| connections | protected req/s before | p99 ms before | req/s during | p99 ms during | "
        "during/before |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for c, row in result["protected"].items():
        lines.append(
            f"| {c} | {row['before']['rps']:,.0f} | {row['before']['p99_ms']:.2f} | "
            f"{row['during']['rps']:,.0f} | {row['during']['p99_ms']:.2f} | {row['ratio']:.2f}"
            + (" |" if row["ratio"] >= TARGET else " (below 0.50) |")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=run._bounded(1, 120), default=10)
    parser.add_argument("--rounds", type=run._bounded(1, 9), default=3)
    parser.add_argument("--accounts", type=run._bounded(1, 500), default=64)
    parser.add_argument("--addresses", type=run._bounded(1, 60_000), default=1024)
    parser.add_argument("--flood-workers", type=run._bounded(1, 512), default=64)
    parser.add_argument("--correct", type=float, default=0.5, help="share of right passwords")
    parser.add_argument("--retry-pause", type=float, default=0.1, help="seconds, after a refusal")
    parser.add_argument(
        "--free-failures", type=run._bounded(1, 100), default=20, help="server setting"
    )
    parser.add_argument(
        "--profile",
        choices=("rfc9106-low-memory", "owasp-minimum"),
        default=None,
        help="server setting (default: the server's, rfc9106-low-memory)",
    )
    parser.add_argument(
        "--hash-workers", type=run._bounded(1, 64), default=None, help="server setting"
    )
    parser.add_argument("--nice", type=run._bounded(0, 19), default=None, help="server setting")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="run the server on the first CPU, wrk and the flood client on the others "
        "(an attacker's CPU is not the server's)",
    )
    parser.add_argument("--results", type=Path, default=run.RESULTS_DIR)
    args = parser.parse_args(argv)
    if not 0 <= args.correct <= 1 or not 0 <= args.retry_pause <= 10:
        parser.error("--correct is 0..1, --retry-pause 0..10")
    server_cpus, load_cpus = run.cpu_split(args.pin)
    try:
        result = measure(args, server_cpus, load_cpus)
    except (run.BenchError, OSError) as exc:
        run.say(f"flood failed: {exc}")
        return 1
    run.publish(
        result,
        script="flood",
        argv=argv or sys.argv[1:],
        text=table(result),
        results=args.results,
        server_cpus=server_cpus,
        wrk_cpus=load_cpus,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
