"""Cell 6, hybrid: how hard the auth service is pushed when it swaps sessions for JWTs.

The notes say a hybrid puts the auth service "under heavy pressure as JWT token is
issued for each request". The gateway's mint cache is meant to remove that pressure:
this cell counts mints per session per minute at several request rates, with and
without the cache (:func:`mint_load`: one session paced through real nginx in front of
two nodes, the tokens signed read from ``/ready``), and the cost of one mint (signing a
token, per algorithm), the unit that pressure is made of.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from velvetrope.core.tokens.codec import ALGORITHMS
from velvetrope.lab import features
from velvetrope.lab.cells.verify import lab_settings, started_service
from velvetrope.lab.context import LabContext
from velvetrope.lab.features import NotLanded
from velvetrope.lab.gateway import GUARDED, GatewayEdge, gateway_edge
from velvetrope.lab.model import CellResult, Figure, not_available
from velvetrope.lab.servers import EMAIL, PASSWORD, Client
from velvetrope.lab.services import ServiceUnavailable
from velvetrope.lab.timing import Budget, time_variants

__all__ = ["RATES", "Edges", "measure", "mint_load"]

RATES = (1, 10, 100)  # requests per second of one session


class Edges:
    """The run's gateways, one with the mint cache and one without, started on first use."""

    def __init__(self, ctx: LabContext) -> None:
        self._ctx = ctx
        self._stack = contextlib.ExitStack()
        self._open: dict[bool, GatewayEdge] = {}

    def ttl(self) -> timedelta:
        """The internal tokens' lifetime: several fit in a run."""
        return self._ctx.pick(timedelta(seconds=5), timedelta(seconds=10))

    def get(self, *, cached: bool) -> GatewayEdge:
        """The gateway with the cache on or off.

        Raises:
            ServiceUnavailable: Redis, a node or nginx cannot be started here.
        """
        if cached not in self._open:
            redis = self._ctx.services.redis()
            self._open[cached] = self._stack.enter_context(
                gateway_edge(
                    self._ctx.scratch,
                    redis.url,
                    count=self._ctx.pick(1, 2),  # a quick run starts one node per edge
                    cached=cached,
                    ttl=self.ttl(),
                )
            )
        return self._open[cached]

    def close(self) -> None:
        """Stop whatever was started."""
        self._stack.close()


def mint_load(ctx: LabContext, *, rate: int, cached: bool, edges: Edges | None = None) -> float:
    """Mints per session per minute at ``rate`` requests per second.

    One new session sends ``rate`` requests per second through nginx to the guarded
    location for a fixed time (loopback only); the tokens the nodes signed meanwhile
    (``/ready``) are scaled to a minute. Tokens live :meth:`Edges.ttl` (5 s in a quick
    run, 10 s in a full one), so that several lifetimes fit in the run.

    Raises:
        NotLanded: The gateway is not in this velvetrope.
        ServiceUnavailable: Redis, a node or nginx cannot be started here.
    """
    if not features.gateway().available:
        raise NotLanded(features.gateway().reason)
    owned = edges is None
    chosen = edges or Edges(ctx)
    try:
        edge = chosen.get(cached=cached)
        seconds = ctx.pick(3.0, 30.0)
        client = edge.client()
        try:
            client.sign_up()
            cookie, _ = edge.sign_in(client)
            before = edge.minted()
            _paced(client, cookie, rate=rate, seconds=seconds)
            minted = edge.minted() - before
        finally:
            client.close()
        return minted * 60.0 / seconds
    finally:
        if owned:
            chosen.close()


def _paced(client: Client, cookie: str, *, rate: int, seconds: float) -> None:
    """``rate`` requests per second through the gateway for ``seconds``."""
    step = 1.0 / rate
    start = time.perf_counter()
    due = start
    while due < start + seconds:
        reply = client.request("GET", GUARDED + "open", headers={"Cookie": cookie})
        if reply.status != 200:
            raise ServiceUnavailable(f"the gateway answered {reply.status}")
        due += step
        time.sleep(max(0.0, due - time.perf_counter()))


async def _mint_costs(ctx: LabContext, result: CellResult) -> None:
    budget = ctx.pick(
        Budget(rounds=2, warmup=20, calls=200), Budget(rounds=3, warmup=100, calls=1000)
    )
    variants: dict[str, Callable[[], Awaitable[object]]] = {}
    services = []
    try:
        for alg in ALGORITHMS:
            service = await started_service(
                lab_settings({}, database_url="memory://", token_algorithm=alg)
            )
            services.append(service)
            user = await service.register(EMAIL, PASSWORD)
            family = (await service.tokens.issue_for(user.id)).family.id
            access = service.tokens.access

            async def mint(
                access: object = access, user: str = user.id, family: str = family
            ) -> object:
                return access.issue(user_id=user, family_id=family)  # type: ignore[attr-defined]

            variants[f"mint.{alg}"] = mint
        timed = await time_variants(
            variants, budget, noise=ctx.noise, cell=result.id, deadline=ctx.deadline
        )
    finally:
        for service in services:
            await service.aclose()
    for key, (stats, _samples) in timed.items():
        name = key.split(".", 1)[1]
        result.figures.append(
            Figure(
                key,
                f"one mint (sign an access token), {name}",
                "us",
                value=stats.p50,
                stats=stats,
                extra={"p99": stats.p99},
            )
        )


def measure(ctx: LabContext, result: CellResult) -> None:
    """Fill ``result``."""
    ctx.step("timing one mint per algorithm")
    asyncio.run(_mint_costs(ctx, result))
    edges = Edges(ctx)
    try:
        for cached in (True, False):
            for rate in RATES:
                ctx.step(f"mints at {rate} req/s, cache {'on' if cached else 'off'}")
                _mint_figure(ctx, result, edges, rate=rate, cached=cached)
    finally:
        edges.close()


def _mint_figure(
    ctx: LabContext, result: CellResult, edges: Edges, *, rate: int, cached: bool
) -> None:
    key = f"mints.{'cache' if cached else 'nocache'}.{rate}"
    cache = "with" if cached else "without"
    lifetime = edges.ttl().total_seconds()
    label = (
        f"mints per session per minute at {rate} req/s, {cache} the mint cache "
        f"({lifetime:.0f} s tokens)"
    )
    try:
        value = mint_load(ctx, rate=rate, cached=cached, edges=edges)
        result.figures.append(
            Figure(key, label, "mints/min", value=value, extra={"token_lifetime_s": lifetime})
        )
    except (NotLanded, ServiceUnavailable) as exc:
        result.figures.append(not_available(key, label, "mints/min", str(exc)))
