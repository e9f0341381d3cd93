"""What the per-request check costs inside the app, with the machine's noise cancelled.

``run.py`` measures through sockets with wrk, which is what a client sees, but on a
shared or virtual machine its rounds of seconds swing by 10-40% (other tenants, CPU
frequency), more than the difference under test. This script drives the same app
(``velvetrope.lab.benchapp``: the server's middleware, routes and lifespan) as an
ASGI callable in this process, and interleaves the endpoints *request by request*
(open, guarded, protected, floor, both, open, ...), timing each request alone, so a
slow moment of the machine falls on every endpoint alike. The medians per endpoint
are the cost of one request through the app without HTTP parsing or sockets; their
differences are the check's cost:

* *guard check* = guarded - open (``AuthMiddleware``; open and guarded are one route);
* *Depends check* = protected - floor (``Depends(vr.principal)`` against an empty
  dependency one route above it);
* *reuse* = both - guarded (a ``Depends`` behind the guard: an empty dependency's price).

Usage::

    .venv/bin/python benchmarks/inprocess.py [--requests 20000] [--results benchmarks/results]
        [--cases memory,sqlite,redis,postgres,jwt-warm,jwt-cookie,jwt-cold,jwt-cold-es256,...]
        [--smoke]

Writes ``inprocess.json`` and ``inprocess.md`` under ``--results`` (not with
``--smoke``, a short correctness run that checks every endpoint answers 200 with the
credential and 401 without).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from velvetrope.testing import ORIGIN

ENDPOINTS: Final = ("open", "guarded", "protected", "floor", "both")
COLD_TOKENS: Final = 2_000  # distinct tokens cycled in jwt-cold (the cache is emptied between)
SESSION_COOKIE: Final = "__Host-velvetrope-session"
ACCESS_COOKIE: Final = "__Host-velvetrope-access"


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    env: dict[str, str]
    credential: str  # "session", "bearer", "access-cookie" or "cold"


CASES: Final = {
    c.name: c
    for c in (
        Case("memory", "session cookie, in-process store", {}, "session"),
        Case("sqlite", "session cookie, SQLite file", {"store": "sqlite"}, "session"),
        Case(
            "redis",
            "session cookie, sessions in Redis behind the per-node near-cache",
            {"store": "redis"},
            "session",
        ),
        Case(
            "postgres",
            "session cookie, a fresh PostgreSQL database, sessions behind the near-cache",
            {"store": "postgres"},
            "session",
        ),
        Case(
            "jwt-warm",
            "bearer access token (EdDSA), the same one: cache hit",
            {"store": "sqlite"},
            "bearer",
        ),
        Case(
            "jwt-cookie",
            "access-token cookie (VELVETROPE_BROWSER_CREDENTIALS=jwt-cookie)",
            {"store": "sqlite", "VELVETROPE_BROWSER_CREDENTIALS": "jwt-cookie"},
            "access-cookie",
        ),
        Case(
            "jwt-cold",
            f"bearer access token, a different one per request ({COLD_TOKENS:,} cycled, "
            "the cache emptied between uses)",
            {"store": "sqlite"},
            "cold",
        ),
        *(
            Case(
                f"jwt-cold-{alg.lower()}",
                f"jwt-cold with {alg} keys (VELVETROPE_TOKEN_ALGORITHM={alg})",
                {"store": "sqlite", "VELVETROPE_TOKEN_ALGORITHM": alg},
                "cold",
            )
            for alg in ("ES256", "RS256", "HS256")
        ),
    )
}


@dataclass
class Result:
    case: str
    description: str
    requests: int
    median_us: dict[str, float]
    # jwt-cold: TokenService.verify of a fresh token and joserfc's signature check
    # alone, in alternating batches (µs each, medians), and the median of their ratios.
    verify_us: float | None = None
    raw_verify_us: float | None = None
    verify_to_raw: float | None = None

    def derived(self) -> dict[str, float]:
        m = self.median_us
        return {
            "guard_check_us": m["guarded"] - m["open"],
            "depends_check_us": m["protected"] - m["floor"],
            "reuse_us": m["both"] - m["guarded"],
            "floor_us": m["floor"] - m["open"],
        }


async def verify_against_raw(app: Any, token: str, rounds: int) -> tuple[float, float, float]:
    """The cold check next to the signature alone, as ``run.py`` times it: batches of
    ``TokenService.verify`` on fresh tokens (the verified-token cache emptied between
    batches) alternating with batches of joserfc's algorithm object verifying one
    token's signature over its signing input with the same key.

    Returns:
        The median µs of each, and the median of the per-round ratios.
    """
    from velvetrope.core.tokens import codec  # noqa: PLC0415

    service = app.state.velvetrope.service
    access = service.tokens.access
    from velvetrope.lab.servers import unverified_claims  # noqa: PLC0415

    head, payload, signature = token.split(".")
    kid = json.loads(codec._b64decode(head))["kid"]
    found = access.keys.lookup(kid)
    if found is None:
        raise RuntimeError(f"no key {kid!r}")
    key, alg = found
    algorithm = codec._ALGORITHMS[alg]  # the object the codec verifies with
    message, raw = f"{head}.{payload}".encode("ascii"), codec._b64decode(signature)
    claims = unverified_claims(token)
    fresh = [access.issue(user_id=claims["sub"], family_id=claims["sid"]).token for _ in range(200)]
    colds, raws, ratios = [], [], []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(len(fresh)):
            algorithm.verify(message, raw, key)
        raws.append((time.perf_counter() - started) / len(fresh) * 1e6)
        started = time.perf_counter()
        for one in fresh:
            await service.tokens.verify(one)
        colds.append((time.perf_counter() - started) / len(fresh) * 1e6)
        for one in fresh:
            access.forget(one)  # the next batch misses again
        ratios.append(colds[-1] / raws[-1])
    return statistics.median(colds), statistics.median(raws), statistics.median(ratios)


def stores_env(store: str | None, scratch: Path) -> AbstractContextManager[dict[str, str]]:
    """The store variables of a case, and on the way out the removal of what it created:
    Redis and PostgreSQL as ``run.py`` sets them up (a key prefix or a database of the
    run's own, at ``VELVETROPE_BENCH_REDIS_URL`` / ``VELVETROPE_BENCH_POSTGRES_URL``)."""
    if store in ("redis", "postgres"):
        import run  # noqa: PLC0415 - benchmarks/run.py, beside this script

        return run.redis_stores(scratch) if store == "redis" else run.postgres_stores(scratch)
    url = f"sqlite:///{scratch / 'bench.db'}" if store == "sqlite" else "memory://"
    return nullcontext({"VELVETROPE_DATABASE_URL": url})


@contextmanager
def case_env(case: Case, scratch: Path) -> Iterator[None]:
    """The case's ``VELVETROPE_*`` for the app this process builds (its stores set up,
    and removed on the way out); ours restored after, whatever happens.

    Raises:
        BenchError: Redis or PostgreSQL does not answer (``run.py``'s stores).
    """
    saved = {k: v for k, v in os.environ.items() if k.startswith("VELVETROPE_")}
    store = case.env.get("store")
    with stores_env(store, scratch) as store_vars:  # reads the BENCH_* URLs while they are set
        env = {k: v for k, v in case.env.items() if k != "store"}
        env.update(
            store_vars,
            VELVETROPE_PUBLIC_ORIGIN=ORIGIN,  # https: velvetrope.testing's client needs it
            VELVETROPE_LOG_LEVEL="warning",
            VELVETROPE_ACCESS_TOKEN_TTL="PT1H",
            VELVETROPE_LOGIN_IP_FAILURES="100000",
        )
        if store is None:
            env["VELVETROPE_PASSWORD_HASH_PROFILE"] = "test-only"
        try:
            for key in saved:
                del os.environ[key]
            os.environ.update(env)
            yield
        finally:
            for key in [k for k in os.environ if k.startswith("VELVETROPE_")]:
                del os.environ[key]
            os.environ.update(saved)


async def credentials(client: Any, case: Case) -> list[list[tuple[bytes, bytes]]]:
    """A user and the credential headers to send (one set per request for ``cold``,
    cycled), through ``velvetrope.testing``: cookies from ``POST /auth/login``, tokens
    issued by the app's own service."""
    from velvetrope.lab.servers import unverified_claims  # noqa: PLC0415
    from velvetrope.testing import bearer_for, new_user, sign_in  # noqa: PLC0415

    user = await new_user(client)
    if case.credential in ("session", "access-cookie"):
        await sign_in(client, user)
        name = SESSION_COOKIE if case.credential == "session" else ACCESS_COOKIE
        return [[(b"cookie", f"{name}={client.cookies[name]}".encode())]]
    bearer = (await bearer_for(user))["Authorization"]
    if case.credential == "bearer":
        return [[(b"authorization", bearer.encode())]]
    claims = unverified_claims(bearer.removeprefix("Bearer "))
    access = client.velvetrope.service.tokens.access
    issued = (
        access.issue(user_id=claims["sub"], family_id=claims["sid"]) for _ in range(COLD_TOKENS)
    )
    return [[(b"authorization", f"Bearer {one.token}".encode())] for one in issued]


def scope_for(endpoint: str, credential: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    path = f"/bench/{endpoint}"
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"), *credential],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def measure(case: Case, requests: int, *, smoke: bool) -> Result:
    from velvetrope.lab.benchapp import build_app  # noqa: PLC0415 - after the env is set
    from velvetrope.testing import app_client  # noqa: PLC0415

    app = build_app()
    async with app_client(app) as client:  # the app's lifespan runs while we measure
        creds = await credentials(client, case)
        access = app.state.velvetrope.service.tokens.access
        statuses: list[int] = []

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        async def call(endpoint: str, credential: list[tuple[bytes, bytes]]) -> int:
            statuses.clear()
            await app(scope_for(endpoint, credential), _receive, send)
            return statuses[0]

        # Every endpoint answers with the credential, and the checked ones refuse without.
        expected = [(e, creds[0], 200) for e in ENDPOINTS]
        expected += [(e, [], 401) for e in ("guarded", "protected", "both")]
        for endpoint, credential, wanted in expected:
            if (status := await call(endpoint, credential)) != wanted:
                raise RuntimeError(
                    f"{case.name}: /bench/{endpoint} answered {status}, not {wanted}"
                )
        if case.credential == "cold":
            for credential in creds:
                access.forget(credential[0][1].decode().removeprefix("Bearer "))
        statuses.clear()
        samples: dict[str, list[int]] = {e: [] for e in ENDPOINTS}
        clock = time.perf_counter_ns
        order = list(ENDPOINTS)
        sent = 0  # jwt-cold: every request, on every endpoint, sends the next token
        for _ in range(requests):
            order.reverse()  # alternate the order so no endpoint always follows another
            for endpoint in order:
                credential = creds[sent % len(creds)]
                sent += 1
                started = clock()
                await app(scope_for(endpoint, credential), _receive, send)
                samples[endpoint].append(clock() - started)
                if case.credential == "cold" and sent % len(creds) == 0:
                    for used in creds:  # every token is verified again on its next use
                        access.forget(used[0][1].decode().removeprefix("Bearer "))
        refused = len(statuses) - statuses.count(200)
        if refused:
            raise RuntimeError(f"{case.name}: {refused} timed requests did not answer 200")
        result = Result(
            case.name,
            case.description,
            requests,
            {e: statistics.median(v) / 1000 for e, v in samples.items()},
        )
        if case.credential == "cold":
            token = creds[0][0][1].decode().removeprefix("Bearer ")
            rounds = 3 if smoke else 30
            result.verify_us, result.raw_verify_us, result.verify_to_raw = await verify_against_raw(
                app, token, rounds
            )
    return result


def table(results: Sequence[Result]) -> str:
    lines = [
        "| case | open µs | guarded µs | protected µs | floor µs | both µs "
        "| guard check µs | Depends check µs | reuse µs (both - guarded) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        m, d = r.median_us, r.derived()
        lines.append(
            f"| {r.case} | {m['open']:.1f} | {m['guarded']:.1f} | {m['protected']:.1f} | "
            f"{m['floor']:.1f} | {m['both']:.1f} | {d['guard_check_us']:.1f} | "
            f"{d['depends_check_us']:.1f} | {d['reuse_us']:.1f} |"
        )
    return "\n".join(lines)


def source() -> str:
    """The commit measured (``+dirty`` with uncommitted changes), or ``unknown``."""
    import subprocess  # noqa: PLC0415

    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty=+dirty"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def verify_line(r: Result) -> str:
    return (
        f"{r.case}: TokenService.verify {r.verify_us:.1f} us against the signature alone "
        f"{r.raw_verify_us:.1f} us: {r.verify_to_raw:.2f}x (median of per-round ratios)"
    )


def versions() -> dict[str, str]:
    from importlib.metadata import version  # noqa: PLC0415

    return {name: version(name) for name in ("velvetrope", "fastapi", "starlette", "pydantic")}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="timed requests per endpoint")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated cases")
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--smoke", action="store_true", help="a short run; writes nothing")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    requests = 200 if args.smoke else args.requests
    started = datetime.now(UTC)
    results = []
    from run import BenchError  # noqa: PLC0415 - benchmarks/run.py, beside this script

    for name in names:
        try:
            with tempfile.TemporaryDirectory() as scratch, case_env(CASES[name], Path(scratch)):
                result = asyncio.run(measure(CASES[name], requests, smoke=args.smoke))
        except BenchError as exc:  # a store that is not there: say which, no traceback
            print(f"inprocess.py: {name}: {exc}", file=sys.stderr)
            return 2
        print(
            f"[{name}] " + "  ".join(f"{e} {v:.1f} us" for e, v in result.median_us.items()),
            flush=True,
        )
        results.append(result)
    print(table(results))
    for r in results:
        if r.verify_to_raw is not None:
            print(verify_line(r))
    if args.smoke:
        return 0
    report = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "machine": (
            f"{os.cpu_count()} CPUs, {platform.platform()}, CPython {platform.python_version()}"
        ),
        "source": source(),
        "versions": versions(),
        "results": [{**asdict(r), **r.derived()} for r in results],
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "inprocess.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.results / "inprocess.md").write_text(
        "# The check's cost inside the app (benchmarks/inprocess.py)\n\n"
        f"Median µs per request through the ASGI app, endpoints interleaved request by "
        f"request, {requests:,} requests each; {report['machine']}; "
        f"{report['started']} to {report['finished']}; source {report['source']}.\n\n"
        f"Command: `python benchmarks/{report['command']}`\n\n{table(results)}\n\n"
        + "".join(f"{verify_line(r)}\n" for r in results if r.verify_to_raw is not None)
    )
    print(f"wrote {args.results / 'inprocess.json'} and {args.results / 'inprocess.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
