"""Cell 6, hybrid: how hard the auth service is pushed when it swaps sessions for JWTs.

The notes say a hybrid puts the auth service "under heavy pressure as JWT token is
issued for each request". The gateway's mint cache is meant to remove that pressure:
this cell counts mints per session per minute at several request rates, with and
without the cache, once the gateway lands (:func:`mint_load`).

Measured today: the cost of one mint (signing an access token, per algorithm), the unit
that pressure is made of.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from velvetrope.core.tokens.codec import ALGORITHMS
from velvetrope.lab import features
from velvetrope.lab.cells.verify import lab_settings, started_service
from velvetrope.lab.context import LabContext
from velvetrope.lab.features import NotLanded
from velvetrope.lab.model import CellResult, Figure, not_available
from velvetrope.lab.servers import EMAIL, PASSWORD
from velvetrope.lab.timing import Budget, time_variants

__all__ = ["RATES", "measure", "mint_load"]

RATES = (1, 10, 100)  # requests per second of one session


def mint_load(ctx: LabContext, *, rate: int, cached: bool) -> float:
    """Adapter: mints per session per minute at ``rate`` requests per second.

    Fill in when the gateway lands: start the gateway in front of a node, send ``rate``
    requests per second with one session for a fixed time (bounded, loopback only),
    count the internal tokens the auth service minted (its mint counter or the distinct
    tokens seen upstream) and scale to a minute; ``cached`` turns the mint cache on.

    Raises:
        NotLanded: The gateway is not in this velvetrope.
    """
    raise NotLanded(
        features.gateway().reason or "the mint_load adapter in cells/hybrid.py is empty"
    )


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
    for rate in RATES:
        for cached in (False, True):
            key = f"mints.{'cache' if cached else 'nocache'}.{rate}"
            cache = "with" if cached else "without"
            label = f"mints per session per minute at {rate} req/s, {cache} the mint cache"
            try:
                value = mint_load(ctx, rate=rate, cached=cached)
                result.figures.append(Figure(key, label, "mints/min", value=value))
            except NotLanded as exc:
                result.figures.append(not_available(key, label, "mints/min", str(exc)))
