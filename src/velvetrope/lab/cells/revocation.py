"""Cell 5, revocation latency: from sign-out on one node to the first refusal on another.

Two nodes share a store. A client signs in on node A and is accepted on node B (so B
has seen the credential: a near-cache holds the session, the token cache holds the
token). It signs out on A (``POST /auth/logout``); from the moment A answered, the lab
asks B for ``/auth/me`` with the same credential, one request after the other, until B
refuses. Per way in (session cookie, JWT bearer) and store; a few trials each.

A *plain* JWT is also measured: a verifier that checks the signature and ``exp`` with
the node's public key and keeps no denylist, as a service verifying against the JWKS
alone would. It accepts a signed-out token until the token expires: its revocation
latency is the token's remaining lifetime, whatever the sign-out did. The node runs with
a short lifetime so the run can wait for it; with the default 15 minutes the wait would
be up to 900 s.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from velvetrope.bootstrap import build_service
from velvetrope.core.tokens import codec
from velvetrope.core.tokens.access import ACCESS_TYP
from velvetrope.errors import InvalidToken
from velvetrope.lab.cells.verify import lab_settings
from velvetrope.lab.context import LabContext
from velvetrope.lab.model import CellResult, Figure, not_available, stats_of
from velvetrope.lab.servers import Client, Node, nodes, unverified_claims
from velvetrope.lab.services import HOST, ServiceUnavailable, free_port
from velvetrope.lab.stores import store_env

__all__ = ["measure"]

WAYS = ("session", "jwt")
WAIT_LIMIT = 15.0  # seconds a refusal may take before the trial gives up
MAX_POLLS = 20_000  # and requests (or plain checks) it may send meanwhile


class _NeverRefused(Exception):
    pass


def _credential(client: Client, way: str, origin: str) -> tuple[dict[str, str], dict[str, str]]:
    """(headers for requests, headers for the sign-out)."""
    if way == "session":
        name, value, csrf = client.session_cookie(origin=origin)
        cookie = {"Cookie": f"{name}={value}"}
        return cookie, {**cookie, "Origin": origin, "X-CSRF-Token": csrf}
    bearer = {"Authorization": f"Bearer {client.tokens()['access_token']}"}
    return bearer, bearer


def _trial(a: Node, b: Node, way: str, origin: str) -> float:
    """One sign-out on ``a``; seconds until ``b`` refused the credential."""
    on_a, on_b = a.client(), b.client()
    try:
        headers, sign_out = _credential(on_a, way, origin)
        if on_b.request("GET", "/auth/me", headers=headers).status != 200:
            raise ServiceUnavailable(f"node B did not accept the {way} credential before sign-out")
        if on_a.request("POST", "/auth/logout", headers=sign_out).status != 204:
            raise ServiceUnavailable("the sign-out was not accepted")
        signed_out = time.perf_counter()
        for _ in range(MAX_POLLS):
            if time.perf_counter() - signed_out > WAIT_LIMIT:
                break
            if on_b.request("GET", "/auth/me", headers=headers).status == 401:
                return time.perf_counter() - signed_out
        raise _NeverRefused(f"node B still accepted the credential {WAIT_LIMIT:.0f} s later")
    finally:
        on_a.close()
        on_b.close()


def _label(way: str, store: str) -> str:
    kind = "session cookie" if way == "session" else "JWT bearer (velvetrope, with its denylist)"
    return f"{kind}, {store}"


def _shared(ctx: LabContext, result: CellResult, store: str, trials: int) -> list[Figure]:
    """Both ways in on one pair of nodes sharing ``store``."""
    figures = []
    try:
        env = store_env(store, ctx.scratch, ctx.services)
        origin = f"http://{HOST}:{free_port()}"  # one issuer for both nodes, as behind a proxy
        with nodes(2, env, ctx.scratch, public_origin=origin) as (a, b):
            client = a.client()
            client.sign_up()
            client.close()
            for way in WAYS:
                key = f"{way}.{store}"
                ctx.step(f"{way} on {store}: {trials} sign-outs")
                taken = []
                try:
                    for index in range(trials):
                        with ctx.noise.round(result.id, f"{key} trial {index + 1}"):
                            taken.append(_trial(a, b, way, origin) * 1000)
                except _NeverRefused as exc:
                    figures.append(not_available(key, _label(way, store), "ms", str(exc)))
                    continue
                stats = stats_of([[t] for t in taken])
                figures.append(
                    Figure(
                        key,
                        _label(way, store),
                        "ms",
                        value=stats.p50,
                        stats=stats,
                        extra={"max": max(taken)},
                    )
                )
    except ServiceUnavailable as exc:
        done = {f.key for f in figures}
        figures += [
            not_available(f"{w}.{store}", _label(w, store), "ms", str(exc))
            for w in WAYS
            if f"{w}.{store}" not in done
        ]
    return figures


async def _plain_verifier(env: dict[str, str], token: str, signed_out: float) -> float:
    """Poll a signature-and-exp-only verifier until it refuses ``token``; seconds taken."""
    claims = unverified_claims(token)
    service = build_service(lab_settings(env, public_origin=claims["iss"]))
    await service.start(rotate_keys=False)
    try:
        keys = service.tokens.access.keys
        for _ in range(MAX_POLLS):
            if time.time() - signed_out > WAIT_LIMIT + 60:
                break
            try:
                decoded = codec.decode_compact(token, keys.lookup, typ=ACCESS_TYP)
                if time.time() >= decoded.claims["exp"]:
                    return time.time() - signed_out
            except InvalidToken:
                return time.time() - signed_out
            await asyncio.sleep(0.01)
    finally:
        await service.aclose()
    raise _NeverRefused("the plain verifier still accepted the token")


def _plain(ctx: LabContext, result: CellResult) -> Figure:
    lifetime = ctx.pick(1, 5)
    label = f"plain JWT, no denylist (lifetime {lifetime} s here)"
    try:
        env = store_env("sqlite", ctx.scratch, ctx.services)
        env["VELVETROPE_ACCESS_TOKEN_TTL"] = f"PT{lifetime}S"
        with nodes(1, env, ctx.scratch) as (node,):
            client = node.client()
            try:
                client.sign_up()
                token = client.tokens()["access_token"]
                bearer = {"Authorization": f"Bearer {token}"}
                with ctx.noise.round(result.id, "plain JWT"):
                    if client.request("POST", "/auth/logout", headers=bearer).status != 204:
                        raise ServiceUnavailable("the sign-out was not accepted")
                    signed_out = time.time()
                    refused_by_node = client.request("GET", "/auth/me", headers=bearer).status
                    taken = asyncio.run(_plain_verifier(env, token, signed_out))
            finally:
                client.close()
    except (ServiceUnavailable, _NeverRefused) as exc:
        return not_available("plain-jwt", label, "s", str(exc))
    return Figure(
        "plain-jwt",
        label,
        "s",
        value=taken,
        outcome=f"accepted until exp; velvetrope itself answered {refused_by_node} at once",
        extra={"lifetime_s": float(lifetime), "default_lifetime_s": 900.0},
    )


def measure(ctx: LabContext, result: CellResult) -> None:
    """Fill ``result``."""
    trials = ctx.pick(2, 5)
    for store in ctx.pick(["sqlite"], ["sqlite", "redis", "postgres"]):
        result.figures += _shared(ctx, result, store, trials)
    ctx.step("plain JWT: waiting for it to expire")
    result.figures.append(_plain(ctx, result))
    spread = [f.value for f in result.figures if f.measured and f.unit == "ms"]
    if spread:
        result.notes.append(
            f"{trials} trials per way in and store; median of the measured medians "
            f"{statistics.median(v for v in spread if v is not None):.1f} ms."
        )
