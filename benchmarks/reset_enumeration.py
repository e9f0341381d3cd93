"""How long POST /auth/password/forgot takes for an address with an account and one without.

RESET-06 says the two cases do the same work (one look-up, two store writes, the mail
queued, never awaited). This measures it, in-process (httpx over ASGI, the real app,
SQLite in a scratch directory, mail printed into a buffer): the requests alternate
between a known and an unknown address, each with a new address so the per-address
cooldown never short-cuts one side, and the medians and 90th percentiles are compared
in one run. Timing never goes into a unit test (docs/style.md rule 23).

    .venv/bin/python benchmarks/reset_enumeration.py [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from velvetrope import AuthService, PasswordHasher, Settings, Velvetrope, create_app
from velvetrope.bootstrap import open_configured_stores
from velvetrope.core.accounts import AccountMailPolicy
from velvetrope.core.mail import ConsoleMailer

ORIGIN = "https://bench.example"


async def measure(requests: int, directory: Path) -> dict[str, list[float]]:
    settings = Settings(
        _env_file=None, database_url=f"sqlite:///{directory / 'vr.db'}", public_origin=ORIGIN
    )
    service = AuthService(
        open_configured_stores(settings),
        hasher=PasswordHasher("test-only"),
        mailer=ConsoleMailer("bench <no-reply@bench.example>", io.StringIO()),
        account_policy=AccountMailPolicy(origin=ORIGIN),
    )
    vr = Velvetrope(settings, service=service)
    app = create_app(velvetrope=vr)
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    async with vr.lifespan(app):
        for n in range(requests):
            await service.register(f"known-{n}@bench.example", "correct horse battery staple")
        await service.accounts.outbox.drain()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
            for n in range(requests):
                order = ("known", "unknown") if n % 2 == 0 else ("unknown", "known")
                for kind in order:
                    email = f"{kind}-{n}@bench.example"
                    start = time.perf_counter()
                    response = await http.post("/auth/password/forgot", json={"email": email})
                    timings[kind].append(time.perf_counter() - start)
                    if response.status_code != 202:
                        raise SystemExit(f"unexpected answer: {response.text}")
                    # The queued mail goes out between requests, not inside the next one.
                    await service.accounts.outbox.drain()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per case")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        timings = asyncio.run(measure(args.requests, Path(scratch)))
    for kind, values in timings.items():
        values.sort()
        p90 = values[int(len(values) * 0.9)]
        print(
            f"{kind:8} median {statistics.median(values) * 1e3:7.3f} ms   "
            f"p90 {p90 * 1e3:7.3f} ms   ({len(values)} requests)"
        )
    known, unknown = (statistics.median(timings[k]) for k in ("known", "unknown"))
    print(f"median difference (known - unknown): {(known - unknown) * 1e6:+.0f} µs")


if __name__ == "__main__":
    main()
