"""Cell 3, HTTP throughput and latency: a protected endpoint against the same endpoint
open, per way in (session cookie, JWT bearer) and store, under wrk.

Topologies: one node with one worker (direct), one node with two workers (``serve
--workers``, once it lands: :func:`velvetrope.lab.servers.worker_args`), and one and
three nodes behind nginx (round robin, keep-alive upstreams). Setup (sign-up, sign-in)
goes to the first node directly; the load goes through nginx, so with three nodes every
node sees the credential. With the ``memory`` store each node has sessions and signing
keys of its own: behind three nodes two requests in three are refused, which is what
"sessions need shared storage" means (and, here, JWTs too: the keys live in the store).

Every request of a combination carries the same credential, open ones too, so only the
check differs. Rounds interleave open and guarded, reversing the order every round. The
figure is the guarded endpoint's req/s (median of rounds, spread over rounds), with the
open endpoint's, their ratio, the latency percentiles wrk reports and the share of
refused answers.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Iterator
from dataclasses import dataclass

from velvetrope.lab import features
from velvetrope.lab.benchapp import GUARDED_PATH, OPEN_PATH
from velvetrope.lab.context import LabContext
from velvetrope.lab.features import NotLanded
from velvetrope.lab.model import CellResult, Figure, Series, not_available, stats_of
from velvetrope.lab.servers import Node, nodes, worker_args
from velvetrope.lab.services import HOST, Nginx, ServiceUnavailable, free_port
from velvetrope.lab.stores import store_env
from velvetrope.lab.wrk import WrkOutputError, WrkResult, run_wrk

__all__ = ["Combo", "measure"]

TOPOLOGIES = {
    "w1": "1 node, 1 worker",
    "w2": "1 node, 2 workers",
    "n1": "nginx + 1 node",
    "n3": "nginx + 3 nodes",
}
WAYS = {"session": "session cookie", "jwt": "JWT bearer"}


@dataclass(frozen=True, slots=True)
class Combo:
    """One way in, store and topology."""

    way: str
    store: str
    topology: str

    @property
    def key(self) -> str:
        return f"{self.way}.{self.store}.{self.topology}"

    @property
    def label(self) -> str:
        return f"{WAYS[self.way]}, {self.store}, {TOPOLOGIES[self.topology]}"


def _matrix(quick: bool) -> list[Combo]:
    if quick:
        return [
            Combo("session", "memory", "w1"),
            Combo("jwt", "memory", "w1"),
            Combo("session", "sqlite", "w2"),
            Combo("session", "sqlite", "n3"),
        ]
    combos = [Combo(w, s, "w1") for s in ("memory", "sqlite", "redis", "postgres") for w in WAYS]
    # Workers share what the store shares: per-process memory stores would refuse half.
    combos += [Combo(w, "sqlite", "w2") for w in WAYS]
    for topology in ("n1", "n3"):
        combos += [Combo(w, s, topology) for s in ("sqlite", "redis") for w in WAYS]
    combos += [Combo(w, "memory", "n3") for w in WAYS]
    return combos


@contextlib.contextmanager
def _entry(ctx: LabContext, store: str, topology: str) -> Iterator[tuple[str, Node]]:
    """The URL origin wrk loads, and the node to sign in at."""
    worker_count = 2 if topology == "w2" else 1
    worker_args(worker_count)  # raises NotLanded where serve --workers has not landed
    env = store_env(store, ctx.scratch, ctx.services)
    if topology in {"w1", "w2"}:
        with nodes(1, env, ctx.scratch, worker_count=worker_count) as started:
            yield started[0].origin, started[0]
        return
    if not features.tool("nginx", "apt-get install nginx").available:
        raise ServiceUnavailable("nginx is not installed (apt-get install nginx)")
    proxy_port = free_port()
    origin = f"http://{HOST}:{proxy_port}"
    count = 3 if topology == "n3" else 1
    with nodes(count, env, ctx.scratch, public_origin=origin) as started:
        proxy = Nginx(ctx.scratch, [n.port for n in started], port=proxy_port)
        try:
            yield origin, started[0]
        finally:
            proxy.stop()


def _credential(node: Node, way: str, origin: str) -> dict[str, str]:
    client = node.client()
    try:
        client.sign_up()
        if way == "session":
            name, value, _csrf = client.session_cookie(origin=origin)
            return {"Cookie": f"{name}={value}"}
        return {"Authorization": f"Bearer {client.tokens()['access_token']}"}
    finally:
        client.close()


def _figure(combo: Combo, runs: dict[str, list[WrkResult]], result: CellResult) -> Figure:
    guarded, opened = runs["guarded"], runs["open"]
    ratios = [g.rps / o.rps for g, o in zip(guarded, opened, strict=True) if o.rps]
    refused = sum(g.non_2xx for g in guarded) / max(1, sum(g.requests for g in guarded))
    if combo.topology == "w1":
        last = guarded[-1]
        result.series.append(
            Series(
                f"{combo.key} guarded",
                (
                    last.latency_p50_ms,
                    last.latency_p75_ms,
                    last.latency_p90_ms,
                    last.latency_p99_ms,
                ),
                (0.50, 0.75, 0.90, 0.99),
            )
        )
    return Figure(
        combo.key,
        combo.label,
        "req/s",
        value=statistics.median(g.rps for g in guarded),
        stats=stats_of([[g.rps] for g in guarded]),
        extra={
            "open_rps": statistics.median(o.rps for o in opened),
            "ratio": statistics.median(ratios) if ratios else 0.0,
            "guarded_p50_ms": statistics.median(g.latency_p50_ms for g in guarded),
            "guarded_p99_ms": statistics.median(g.latency_p99_ms for g in guarded),
            "open_p50_ms": statistics.median(o.latency_p50_ms for o in opened),
            "open_p99_ms": statistics.median(o.latency_p99_ms for o in opened),
            "refused_share": refused,
            "nodes": 3.0 if combo.topology == "n3" else 1.0,
        },
    )


def _load(ctx: LabContext, combos: list[Combo], result: CellResult) -> list[Figure]:
    """Measure the ways in of one store and topology on the same nodes."""
    seconds, rounds = ctx.pick((1, 1), (2, 3))
    paths = {"open": OPEN_PATH, "guarded": GUARDED_PATH}
    with _entry(ctx, combos[0].store, combos[0].topology) as (origin, node):
        figures = []
        for combo in combos:
            ctx.step(combo.label)
            headers = _credential(node, combo.way, origin)
            runs: dict[str, list[WrkResult]] = {"open": [], "guarded": []}
            if not ctx.quick:  # warm-up, not recorded
                for path in paths.values():
                    run_wrk(origin + path, seconds=1, connections=32, threads=2, headers=headers)
            for index in range(rounds):
                order = ["open", "guarded"] if index % 2 == 0 else ["guarded", "open"]
                with ctx.noise.round(result.id, f"{combo.key} round {index + 1}"):
                    for name in order:
                        report, _ = run_wrk(
                            origin + paths[name],
                            seconds=seconds,
                            connections=32,
                            threads=2,
                            headers=headers,
                        )
                        runs[name].append(report)
            figures.append(_figure(combo, runs, result))
        return figures


def measure(ctx: LabContext, result: CellResult) -> None:
    """Fill ``result``."""
    wrk = features.tool("wrk", "apt-get install wrk")
    groups: dict[tuple[str, str], list[Combo]] = {}
    for combo in _matrix(ctx.quick):
        groups.setdefault((combo.store, combo.topology), []).append(combo)
    for combos in groups.values():
        try:
            if not wrk.available:
                raise ServiceUnavailable(wrk.reason)
            result.figures += _load(ctx, combos, result)
        except (NotLanded, ServiceUnavailable, WrkOutputError) as exc:
            result.figures += [not_available(c.key, c.label, "req/s", str(exc)) for c in combos]
    result.notes.append(
        "wrk with 32 connections and 2 threads; "
        + ctx.pick(
            "1 round of 1 s per endpoint, no warm-up",
            "3 interleaved rounds of 2 s per endpoint after 1 s of warm-up",
        )
        + ". Every request carries the credential; `ratio` is guarded/open req/s."
    )
