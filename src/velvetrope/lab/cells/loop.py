"""Cell 4, single-threaded cost: the latency of a cheap endpoint while the same event
loop verifies cold JWTs, or looks sessions up.

One node (one worker: one event loop, SQLite store). A probe in the lab sends
``GET /bench/open`` one request at a time on a keep-alive connection and times each
answer, while wrk keeps 4 connections busy on ``/bench/guarded`` with one of:

* ``idle``: no background load (the probe alone);
* ``sessions``: a session cookie (a session lookup per request);
* ``jwt-warm``: the same access token (a cache hit per request);
* ``jwt-cold``: a new access token every request (a signature verification per
  request: 12,000+ tokens signed with the node's key cycle through wrk's
  ``rotating_bearer.lua``, more than the node's 10,000-token cache holds).

The figure is the probe's p99 in ms (p50 beside it) and the background's req/s; the
rounds interleave the loads.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time

from velvetrope.lab import features
from velvetrope.lab.benchapp import GUARDED_PATH, OPEN_PATH
from velvetrope.lab.cells.verify import lab_settings
from velvetrope.lab.context import LabContext
from velvetrope.lab.model import CellResult, Figure, not_available, stats_of
from velvetrope.lab.servers import Client, Node, nodes, unverified_claims
from velvetrope.lab.services import ServiceUnavailable
from velvetrope.lab.stores import store_env
from velvetrope.lab.timing import cdf
from velvetrope.lab.wrk import GRACE, ROTATION_SCRIPT, WrkOutputError, parse_wrk

__all__ = ["measure", "mint_like"]

LOADS = {
    "idle": "probe alone",
    "sessions": "while the loop looks sessions up",
    "jwt-warm": "while the loop checks a cached JWT",
    "jwt-cold": "while the loop verifies cold JWTs",
}
MAX_PROBES = 50_000


async def _mint(env: dict[str, str], model: str, count: int) -> list[str]:
    claims = unverified_claims(model)
    settings = lab_settings(
        env, public_origin=claims["iss"], token_issuer=claims["iss"], token_audience=claims["aud"]
    )
    from velvetrope.bootstrap import build_service  # noqa: PLC0415 - keeps the import light

    service = build_service(settings)
    await service.start(rotate_keys=False)  # the node's key, from its database
    try:
        access = service.tokens.access
        return [
            access.issue(user_id=claims["sub"], family_id=claims["sid"]).token for _ in range(count)
        ]
    finally:
        await service.aclose()


def mint_like(env: dict[str, str], model: str, count: int) -> list[str]:
    """``count`` new access tokens like ``model``, signed with the node's own key."""
    return asyncio.run(_mint(env, model, count))


def _probe(node: Node, seconds: float) -> list[float]:
    client = node.client(user_agent="velvetrope-lab probe")
    taken: list[float] = []
    try:
        client.request("GET", OPEN_PATH)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and len(taken) < MAX_PROBES:
            started = time.perf_counter()
            client.request("GET", OPEN_PATH)
            taken.append((time.perf_counter() - started) * 1000)
            time.sleep(0.002)  # a steady trickle, not a second load
    finally:
        client.close()
    return taken


def _round(
    node: Node, load: str, headers: dict[str, str], tokens: str, seconds: int
) -> tuple[list[float], float]:
    """Probe for ``seconds`` under ``load``; the probe's times and the background's req/s."""
    if load == "idle":
        return _probe(node, seconds), 0.0
    command = ["wrk", "--threads=1", "--connections=4", f"--duration={seconds}s", "--latency"]
    if load == "jwt-cold":
        command += [
            f"--script={ROTATION_SCRIPT}",
            node.origin + GUARDED_PATH,
            "--",
            tokens,
            "0",
            "1",
        ]
    else:
        command += [f"--header={k}: {v}" for k, v in headers.items()] + [node.origin + GUARDED_PATH]
    wrk = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        taken = _probe(node, seconds - 0.6)
        out, err = wrk.communicate(timeout=seconds + GRACE)
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    if wrk.returncode != 0:
        raise WrkOutputError(f"wrk exited with {wrk.returncode}: {err.strip()[:200]}")
    report = parse_wrk(load, out)
    if report.non_2xx:
        raise WrkOutputError(f"{load}: {report.non_2xx} background answers were not 2xx")
    return taken, report.rps


def _run(ctx: LabContext, result: CellResult) -> None:
    seconds, rounds, count = ctx.pick((2, 1, 12_000), (4, 3, 30_000))
    env = store_env("sqlite", ctx.scratch, ctx.services)
    with nodes(1, env, ctx.scratch) as (node,):
        client: Client = node.client()
        try:
            client.sign_up()
            name, value, _ = client.session_cookie()
            warm = client.tokens()["access_token"]
        finally:
            client.close()
        ctx.step(f"signing {count:,} access tokens with the node's key")
        tokens_file = ctx.scratch / "loop-tokens.txt"
        tokens_file.write_text("\n".join(mint_like(env, warm, count)) + "\n")
        headers = {
            "idle": {},
            "sessions": {"Cookie": f"{name}={value}"},
            "jwt-warm": {"Authorization": f"Bearer {warm}"},
            "jwt-cold": {},
        }
        probes: dict[str, list[list[float]]] = {load: [] for load in LOADS}
        background: dict[str, list[float]] = {load: [] for load in LOADS}
        names = list(LOADS)
        for index in range(rounds):
            for load in names if index % 2 == 0 else names[::-1]:
                ctx.step(f"round {index + 1}: probe {LOADS[load]}")
                with ctx.noise.round(result.id, f"{load} round {index + 1}"):
                    taken, rps = _round(node, load, headers[load], str(tokens_file), seconds)
                probes[load].append(taken)
                background[load].append(rps)
    for load, label in LOADS.items():
        stats = stats_of(probes[load])
        result.figures.append(
            Figure(
                f"probe.{load}",
                f"cheap endpoint p99, {label}",
                "ms",
                value=stats.p99,
                stats=stats,
                extra={"p50": stats.p50, "background_rps": statistics.median(background[load])},
            )
        )
        result.series.append(cdf(f"probe {load}", [v for r in probes[load] for v in r]))
    result.notes.append(
        f"{rounds} interleaved round(s) of {seconds} s per load; the probe sends one request "
        "every ~2 ms; the background is wrk with 4 connections on one node (one event loop)."
    )


def measure(ctx: LabContext, result: CellResult) -> None:
    """Fill ``result``."""
    wrk = features.tool("wrk", "apt-get install wrk")
    reason = wrk.reason if not wrk.available else None
    if reason is None:
        try:
            _run(ctx, result)
            return
        except (ServiceUnavailable, WrkOutputError) as exc:
            reason = str(exc)
            result.figures.clear()
    for load, label in LOADS.items():
        result.figures.append(
            not_available(f"probe.{load}", f"cheap endpoint p99, {label}", "ms", reason)
        )
