"""Cell 4, single-threaded cost: the latency of a cheap endpoint while the same event
loop verifies cold JWTs, or looks sessions up.

One node (one worker: one event loop, SQLite store). A probe in the lab sends
``GET /bench/open`` one request at a time on a keep-alive connection and times each
answer, while wrk keeps 4 connections busy on ``/bench/guarded`` with one of:

* ``idle``: no background load (the probe alone);
* ``sessions``: a session cookie (a session lookup per request);
* ``jwt-warm``: the same access token (a cache hit per request);
* ``jwt-cold``: a new access token every request (a signature verification per
  request: 12,000 (quick) or 40,000 tokens signed with the node's key cycle through
  wrk's ``rotating_bearer.lua``, more than the node's 10,000-token cache holds). The
  rotation goes on where the last round stopped (:class:`Rotation`), so no round
  replays the tokens of the one before; the node's token-cache counter is read around
  every cold round, and a round that hit the cache makes the figure "not available".

The figure is the probe's p99 in ms (p50 beside it, and the lowest and highest round
p99) and the background's req/s; the rounds interleave the loads.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from velvetrope.lab import features
from velvetrope.lab.benchapp import GUARDED_PATH, OPEN_PATH
from velvetrope.lab.cells.verify import lab_settings
from velvetrope.lab.context import LabContext
from velvetrope.lab.model import CellResult, Figure, Stats, not_available, stats_of
from velvetrope.lab.servers import Client, Node, nodes, unverified_claims
from velvetrope.lab.services import ServiceUnavailable
from velvetrope.lab.stores import store_env
from velvetrope.lab.timing import cdf
from velvetrope.lab.wrk import GRACE, ROTATION_SCRIPT, WrkOutputError, parse_wrk

__all__ = ["Rotation", "cold_unless_cached", "measure", "mint_like", "wrk_command"]

LOADS = {
    "idle": "probe alone",
    "sessions": "while the loop looks sessions up",
    "jwt-warm": "while the loop checks a cached JWT",
    "jwt-cold": "while the loop verifies cold JWTs",
}
MAX_PROBES = 50_000
_NEXT = re.compile(r"^rotating_bearer: next (\d+)", re.MULTILINE)


@dataclass(slots=True)
class Rotation:
    """The cold tokens' file and where the next round starts in it.

    ``rotating_bearer.lua`` sends the token at START, START + 1, ... and prints
    ``rotating_bearer: next N`` at the end: :meth:`advance` makes N the next START.
    """

    path: Path
    count: int
    cursor: int = 0

    def advance(self, wrk_output: str, requests: int) -> None:
        """Move past every token the last round sent.

        Raises:
            WrkOutputError: The script did not say how far it got, or says it sent
                fewer tokens than wrk counted requests.
        """
        found = _NEXT.search(wrk_output)
        if found is None or int(found.group(1)) < self.cursor + requests:
            raise WrkOutputError("rotating_bearer.lua did not report how far it got")
        self.cursor = int(found.group(1)) % self.count


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


def wrk_command(
    url: str, headers: dict[str, str], seconds: int, rotation: Rotation | None = None
) -> list[str]:
    """The background's wrk command: fixed ``headers``, or the next cold tokens."""
    command = ["wrk", "--threads=1", "--connections=4", f"--duration={seconds}s", "--latency"]
    if rotation is None:
        return [*command, *(f"--header={k}: {v}" for k, v in headers.items()), url]
    args = [str(rotation.path), str(rotation.cursor), "1"]
    return [*command, f"--script={ROTATION_SCRIPT}", url, "--", *args]


def _token_hits(node: Node) -> int:
    """The node's verified-token cache hits so far (``GET /ready``).

    Raises:
        ServiceUnavailable: The node did not say.
    """
    client = node.client()
    try:
        reply = client.request("GET", "/ready")
    finally:
        client.close()
    try:
        return int(reply.json()["caches"]["verified_tokens"]["hits"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ServiceUnavailable(f"/ready did not report the token cache ({reply.status})") from exc


def _round(
    node: Node, load: str, headers: dict[str, str], rotation: Rotation | None, seconds: int
) -> tuple[list[float], float, int]:
    """Probe for ``seconds`` under ``load``: the probe's times, the background's req/s
    and its requests (a cold round moves ``rotation`` past the tokens it sent).

    Raises:
        WrkOutputError: wrk failed, or some background answers were not 2xx.
    """
    if load == "idle":
        return _probe(node, seconds), 0.0, 0
    command = wrk_command(node.origin + GUARDED_PATH, headers, seconds, rotation)
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
    if rotation is not None:
        rotation.advance(out, report.requests)
    return taken, report.rps, report.requests


def _probe_figure(load: str, rounds: list[list[float]], background: list[float]) -> Figure:
    stats: Stats = stats_of(rounds)
    p99s = [stats_of([r]).p99 for r in rounds if r]
    return Figure(
        f"probe.{load}",
        f"cheap endpoint p99, {LOADS[load]}",
        "ms",
        value=stats.p99,
        stats=stats,
        extra={
            "p50": stats.p50,
            "background_rps": statistics.median(background),
            "round_p99_min": min(p99s),
            "round_p99_max": max(p99s),
        },
    )


def cold_unless_cached(figure: Figure, *, hits: int, requests: int) -> Figure:
    """The cold-JWT figure, or "not available" when the node's token cache answered any
    of its ``requests``: those rounds were not cold."""
    if not hits:
        return figure
    reason = f"{hits:,} of {requests:,} cold-token requests were token-cache hits"
    return not_available(figure.key, figure.label, figure.unit, reason)


def _run(ctx: LabContext, result: CellResult) -> None:
    seconds, rounds, count = ctx.pick((2, 1, 12_000), (4, 3, 40_000))
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
        rotation = Rotation(ctx.scratch / "loop-tokens.txt", count)
        rotation.path.write_text("\n".join(mint_like(env, warm, count)) + "\n")
        headers = {
            "idle": {},
            "sessions": {"Cookie": f"{name}={value}"},
            "jwt-warm": {"Authorization": f"Bearer {warm}"},
            "jwt-cold": {},
        }
        probes: dict[str, list[list[float]]] = {load: [] for load in LOADS}
        background: dict[str, list[float]] = {load: [] for load in LOADS}
        cold_hits = cold_requests = 0
        names = list(LOADS)
        for index in range(rounds):
            for load in names if index % 2 == 0 else names[::-1]:
                ctx.step(f"round {index + 1}: probe {LOADS[load]}")
                cold = rotation if load == "jwt-cold" else None
                before = _token_hits(node) if cold else 0
                with ctx.noise.round(result.id, f"{load} round {index + 1}"):
                    taken, rps, requests = _round(node, load, headers[load], cold, seconds)
                if cold:
                    cold_hits += _token_hits(node) - before
                    cold_requests += requests
                probes[load].append(taken)
                background[load].append(rps)
    for load in LOADS:
        figure = _probe_figure(load, probes[load], background[load])
        if load == "jwt-cold":
            figure = cold_unless_cached(figure, hits=cold_hits, requests=cold_requests)
        result.figures.append(figure)
        result.series.append(cdf(f"probe {load}", [v for r in probes[load] for v in r]))
    result.notes.append(
        f"{rounds} interleaved round(s) of {seconds} s per load; the probe sends one request "
        "every ~2 ms; the background is wrk with 4 connections on one node (one event loop). "
        f"The cold rounds sent {cold_requests:,} tokens of {count:,}, each round going on "
        f"where the last stopped; the node's token cache counted {cold_hits:,} hits for them."
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
