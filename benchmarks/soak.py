"""Memory under mixed traffic: the server's RSS after the first minute and at the end.

One server (SQLite file, the benchmark app, ``run.py``'s machinery) and ``--workers``
clients looping over a mix of what a deployment sees, for ``--minutes`` (10 by
default):

=====================  ======  ==============================================================
action                 share   what it sends
=====================  ======  ==============================================================
authenticated read     60%     ``GET /bench/guarded`` with a live access token
session read           10%     ``GET /bench/guarded`` with a live session cookie
refresh                 8%     ``POST /auth/token`` ``grant_type=refresh_token`` (rotation)
forged token           12%     ``GET /bench/guarded`` with a new forged token (bad signature)
sign-in                 5%     ``POST /auth/token`` ``grant_type=password`` (hashes)
sign-out                5%     ``POST /auth/revoke`` of a refresh token (the family ends)
=====================  ======  ==============================================================

Every ``--sample`` seconds it reads the server's resident set (``VmRSS`` from
``/proc``) and at the end prints RSS after the first minute and at the end (each the
median of a minute's samples: every argon2 hash maps and returns 64 MiB, so single
readings jump), their ratio (target: within 10%), the request counts and ``/ready``'s
caches, and writes ``benchmarks/results/soak.json``. Sessions and token families live
in SQLite, so what grows in RSS is the process's own state: caches, queues, leaks.

Usage::

    .venv/bin/python benchmarks/soak.py                      # 10 minutes
    .venv/bin/python benchmarks/soak.py --seconds 20 --quick   # a short correctness run
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

import httpx

import run

TARGET: Final = 0.10  # RSS at the end within 10% of RSS after the first minute
ACTIONS: Final = (
    ("read", 60),
    ("session_read", 10),
    ("refresh", 8),
    ("forged", 12),
    ("sign_in", 5),
    ("sign_out", 5),
)
MAX_PAIRS: Final = 64  # live token pairs the clients hold between them


def rss_kib(pid: int) -> int | None:
    """The process's resident set in KiB (Linux), or ``None``."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def forged_token(model: str) -> str:
    """``model``'s header and claims with a random signature (a new token every time)."""
    head, body, _ = model.split(".")
    signature = base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode()
    return f"{head}.{body}.{signature}"


class Mix:
    """The clients' shared state: live token pairs, a session cookie, counters."""

    def __init__(self, cookie: dict[str, str], pair: dict[str, str]) -> None:
        self.cookie = cookie
        self.pairs = [pair]
        self.model = pair["access_token"]
        self.counts: Counter[str] = Counter()
        self.rng = secrets.SystemRandom()
        self.weights = [w for _, w in ACTIONS]

    async def step(self, client: httpx.AsyncClient) -> None:
        action = self.rng.choices([a for a, _ in ACTIONS], self.weights)[0]
        if action in ("sign_out", "refresh") and len(self.pairs) < 2:
            action = "sign_in"
        if action == "sign_in" and len(self.pairs) >= MAX_PAIRS:
            action = "read"
        response = await getattr(self, action)(client)
        self.counts[f"{action} {response.status_code}"] += 1

    async def read(self, client: httpx.AsyncClient) -> httpx.Response:
        pair = self.rng.choice(self.pairs)
        return await client.get(
            run.GUARDED_PATH, headers={"Authorization": f"Bearer {pair['access_token']}"}
        )

    async def session_read(self, client: httpx.AsyncClient) -> httpx.Response:
        return await client.get(run.GUARDED_PATH, headers=self.cookie)

    async def forged(self, client: httpx.AsyncClient) -> httpx.Response:
        headers = {"Authorization": f"Bearer {forged_token(self.model)}"}
        return await client.get(run.GUARDED_PATH, headers=headers)

    async def sign_in(self, client: httpx.AsyncClient) -> httpx.Response:
        form = {"grant_type": "password", "username": run.EMAIL, "password": run.PASSWORD}
        response = await client.post("/auth/token", data=form)
        if response.status_code == 200:
            self.pairs.append(response.json())
        return response

    async def refresh(self, client: httpx.AsyncClient) -> httpx.Response:
        pair = self.pairs.pop(self.rng.randrange(len(self.pairs)))
        form = {"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}
        response = await client.post("/auth/token", data=form)
        if response.status_code == 200:
            self.pairs.append(response.json())
        return response

    async def sign_out(self, client: httpx.AsyncClient) -> httpx.Response:
        pair = self.pairs.pop(self.rng.randrange(len(self.pairs)))
        return await client.post("/auth/revoke", data={"token": pair["refresh_token"]})


async def drive(origin: str, mix: Mix, workers: int, stop: threading.Event) -> None:
    """Run the clients until ``stop`` is set."""
    async with httpx.AsyncClient(base_url=origin, timeout=30) as client:

        async def worker() -> None:
            while not stop.is_set():
                await mix.step(client)
                client.cookies.clear()

        tasks = [asyncio.create_task(worker()) for _ in range(workers)]
        await asyncio.to_thread(stop.wait)
        await asyncio.gather(*tasks, return_exceptions=True)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, run the mix, sample RSS; return the figures."""
    env = {"VELVETROPE_LOGIN_FREE_FAILURES": "100"}
    if args.quick:
        env["VELVETROPE_PASSWORD_HASH_PROFILE"] = "owasp-minimum"
    case = run.Case("soak", "mixed traffic on SQLite", run.sqlite_stores, env=env)
    total = args.seconds if args.seconds is not None else args.minutes * 60
    with (
        tempfile.TemporaryDirectory(prefix="velvetrope-soak-") as scratch,
        run.running_server(case, Path(scratch), ()) as server,
    ):
        cookie = run.session_cookie(server).headers
        form = {"grant_type": "password", "username": run.EMAIL, "password": run.PASSWORD}
        reply = server.request("POST", "/auth/token", form=form)
        if reply.status != 200:
            raise run.BenchError(f"/auth/token answered {reply.status}")
        mix = Mix(cookie, json.loads(reply.body))
        stop = threading.Event()
        thread = threading.Thread(
            target=asyncio.run, args=(drive(server.origin, mix, args.workers, stop),), name="mix"
        )
        samples: list[tuple[float, int]] = []
        started = time.monotonic()
        thread.start()
        try:
            while (elapsed := time.monotonic() - started) < total:
                rss = rss_kib(server.pid)
                if rss is not None:
                    samples.append((round(elapsed, 1), rss))
                    done = sum(mix.counts.values())
                    run.say(f"{elapsed:6.0f} s  RSS {rss / 1024:7.1f} MiB  {done:,} requests")
                time.sleep(min(args.sample, max(0.0, total - elapsed)))
        finally:
            stop.set()
            thread.join(60)
        final = rss_kib(server.pid)
        if final is not None:
            samples.append((round(time.monotonic() - started, 1), final))
        caches = json.loads(server.request("GET", "/ready").body)["caches"]
    if not samples:
        raise run.BenchError("could not read the server's RSS (/proc)")
    # A 64 MiB argon2 buffer comes and goes with every hash (glibc hands it back), so
    # one sample can sit 64-128 MiB above the next: each end is the median of the
    # samples of one minute (the second minute, and the last), not a single reading.
    marker = min(60.0, total / 10)
    span = min(60.0, total / 5)
    first_window = [rss for at, rss in samples if marker <= at < marker + span]
    last_window = [rss for at, rss in samples if at >= samples[-1][0] - span]
    first = int(statistics.median(first_window or [samples[0][1]]))
    end = int(statistics.median(last_window))
    # A sign-in shed by the hashing queue (503 hashing_busy) is the server protecting
    # itself, not a failure; any other 5xx is.
    failures = {
        k: v for k, v in mix.counts.items() if k.split()[1].startswith("5") and k != "sign_in 503"
    }
    return {
        "duration_s": total,
        "workers": args.workers,
        "rss_first_minute_kib": first,
        "rss_marker_s": marker,
        "rss_end_kib": end,
        "rss_growth": (end - first) / first,
        "within_target": (end - first) / first <= TARGET,
        "samples": samples,
        "requests": sum(mix.counts.values()),
        "counts": dict(sorted(mix.counts.items())),
        "server_errors": failures,
        "sign_ins_shed": mix.counts.get("sign_in 503", 0),
        "caches": caches,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=run._bounded(1, 120), default=10)
    parser.add_argument("--seconds", type=run._bounded(5, 7200), default=None, help="overrides")
    parser.add_argument("--workers", type=run._bounded(1, 256), default=16)
    parser.add_argument("--sample", type=run._bounded(1, 600), default=10, help="seconds")
    parser.add_argument(
        "--quick", action="store_true", help="the cheap hashing profile (for the test suite)"
    )
    parser.add_argument("--results", type=Path, default=run.RESULTS_DIR)
    parser.add_argument("--no-results", dest="results", action="store_const", const=None)
    args = parser.parse_args(argv)
    try:
        result = measure(args)
    except (run.BenchError, OSError) as exc:
        run.say(f"soak failed: {exc}")
        return 1
    first, end = result["rss_first_minute_kib"] / 1024, result["rss_end_kib"] / 1024
    summary = (
        f"RSS after {result['rss_marker_s']:.0f} s: {first:.1f} MiB; at the end "
        f"({result['duration_s']} s): {end:.1f} MiB; growth {result['rss_growth']:+.1%} "
        f"(target within {TARGET:.0%}); {result['requests']:,} requests, server errors: "
        f"{result['server_errors'] or 'none'}"
    )
    run.publish(
        result,
        script="soak",
        argv=argv or sys.argv[1:],
        text=summary + "\n" + json.dumps(result["caches"], indent=1),
        results=args.results,
    )
    return 1 if result["server_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
