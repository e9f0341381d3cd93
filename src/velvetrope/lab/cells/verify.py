"""Cell 2, verification cost per request (µs per call, p50/p99), in process.

* a session lookup (``AuthService.authenticate``, exactly the per-request check) in
  memory, SQLite, Redis and PostgreSQL, the last two with and without the per-node
  near-cache;
* a JWT per algorithm: *signature* (the codec alone: parse, check the header, verify
  the signature), *cold* (the whole bearer check on a token never seen before:
  signature, claims and the revocation check) and *warm* (the same token again: the
  verified-token cache and the revocation check);
* the revocation check alone (the in-process denylist lookup every bearer check does);
* DPoP proof verification (:func:`dpop_check`) and the check a service behind the
  hybrid gateway runs on an internal token (:func:`gateway_checks`): cold (every call
  checks the signature) and warm (the verifier's cache of verified tokens).

Every variant runs in the same interleaved rounds (:mod:`velvetrope.lab.timing`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx

from velvetrope.bootstrap import build_service
from velvetrope.core.binding.dpop import DPoPPolicy, DPoPProofs
from velvetrope.core.service import AuthService
from velvetrope.core.tokens import codec
from velvetrope.core.tokens.access import ACCESS_TYP
from velvetrope.core.tokens.codec import ALGORITHMS
from velvetrope.integrations import InternalTokenVerifier
from velvetrope.lab.context import LabContext
from velvetrope.lab.features import NotLanded
from velvetrope.lab.model import CellResult, Figure, not_available
from velvetrope.lab.servers import EMAIL, PASSWORD
from velvetrope.lab.services import ServiceUnavailable
from velvetrope.lab.stores import astore_env
from velvetrope.lab.timing import Budget, cdf, time_variants
from velvetrope.settings import Settings
from velvetrope.stores import MemoryStores
from velvetrope.web.app import create_app
from velvetrope.web.extension import Velvetrope

__all__ = ["dpop_check", "gateway_checks", "lab_settings", "measure", "started_service"]

Call = Callable[[], Awaitable[object]]


def lab_settings(env: dict[str, str], **more: Any) -> Settings:
    """Settings from ``VELVETROPE_*`` variables (as a node would read them) plus ``more``."""
    given: dict[str, Any] = {k.removeprefix("VELVETROPE_").lower(): v for k, v in env.items()}
    given.setdefault("password_hash_profile", "owasp-minimum")
    given.update(more)
    return Settings(_env_file=None, **given)


async def started_service(settings: Settings) -> AuthService:
    """A started service; with a near-cache, once it listens for invalidations."""
    service = build_service(settings)
    await service.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = service.stores.session_cache_status()
        if status is None or not status.enabled or status.push_connected:
            break
        await asyncio.sleep(0.05)
    return service


PROOF_POOL = 6000
"""Proofs signed before timing: more than the full budget's calls (5 x 1,100), since each
proof's ``jti`` is spent once."""


async def dpop_check() -> Call:
    """A call that verifies one DPoP proof (RFC 9449) as the per-request check does: the
    proof's signature with its embedded key, ``htm``/``htu``/``iat``/``ath``, the key
    against the token's ``cnf.jkt``, and its ``jti`` spent in the replay cache (here the
    memory store's; a networked store adds its round trip). Proofs are signed beforehand.
    """
    proofs = DPoPProofs(MemoryStores().one_time, DPoPPolicy(window=timedelta(minutes=10)))
    key = codec.generate_proof_key("ES256")
    jkt = codec.thumbprint(key)
    token = "lab." + secrets.token_urlsafe(32)
    ath = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()
    url = "https://lab.invalid/auth/me"
    now = int(time.time())
    pool = iter(
        [
            codec.sign_proof(
                {
                    "htm": "GET",
                    "htu": url,
                    "iat": now,
                    "jti": secrets.token_urlsafe(16),
                    "ath": ath,
                },
                key=key,
                alg="ES256",
                typ="dpop+jwt",
            )
            for _ in range(PROOF_POOL)
        ]
    )

    async def verify() -> object:
        return await proofs.verify(next(pool), htm="GET", htu=url, access_token=token, bound_to=jkt)

    return verify


async def gateway_checks() -> tuple[Call, Call]:
    """Two calls that verify an internal token as a service behind the gateway does
    (:class:`~velvetrope.integrations.InternalTokenVerifier`, its JWKS already fetched):
    *cold*, a verifier that keeps no verified token (``cache_size=0``), so every call
    runs the strict JOSE checks, the EdDSA signature and the claims; and *warm*, the
    default verifier answering the same token from its cache. The token is minted by a
    real gateway (memory stores) for a signed-in session.

    Raises:
        NotLanded: The gateway did not start.
    """
    origin = "http://127.0.0.1:9"
    settings = lab_settings(
        {}, database_url="memory://", gateway_audiences="lab", public_origin=origin
    )
    vr = Velvetrope(settings)
    gateway = vr.context.gateway
    if gateway is None:  # pragma: no cover - the settings above turn it on
        raise NotLanded("the gateway did not start")
    await vr.service.start()
    await gateway.start()
    await vr.service.register(EMAIL, PASSWORD)
    signed = await vr.service.login(EMAIL, PASSWORD)
    principal = await vr.service.authenticate(signed.session.secret)
    token = (await gateway.token_for(principal, "lab")).token
    app = create_app(velvetrope=vr)
    verifiers = [
        InternalTokenVerifier(
            jwks_url=origin + "/auth/gateway/jwks.json",
            issuer=origin,
            audience="lab",
            transport=httpx.ASGITransport(app=app),
            cache_size=cache_size,
        )
        for cache_size in (0, 10_000)
    ]
    for verifier in verifiers:
        await verifier.verify(token)  # fetches the JWKS once, as a service does at start

    def call(verifier: InternalTokenVerifier) -> Call:
        async def verify() -> object:
            return await verifier.verify(token)

        return verify

    cold, warm = verifiers
    return call(cold), call(warm)


class _Setup:
    """The services, variants and labels of the cell, closed together at the end."""

    def __init__(self) -> None:
        self.services: list[AuthService] = []
        self.variants: dict[str, Call] = {}
        self.labels: dict[str, str] = {}
        self.missing: list[Figure] = []

    def add(self, key: str, label: str, call: Call) -> None:
        self.variants[key] = call
        self.labels[key] = label

    async def aclose(self) -> None:
        for service in self.services:
            await service.aclose()


async def _sessions(ctx: LabContext, setup: _Setup) -> None:
    stores = ctx.pick(
        [("memory", True), ("sqlite", True), ("redis", False), ("redis", True)],
        [
            ("memory", True),
            ("sqlite", True),
            ("redis", False),
            ("redis", True),
            ("postgres", False),
            ("postgres", True),
        ],
    )
    for store, cached in stores:
        key = f"session.{store}" + ("-cache" if cached and store in ("redis", "postgres") else "")
        label = f"session lookup, {store}" + (
            " + near-cache" if key.endswith("-cache") else (" (no cache)" if not cached else "")
        )
        try:
            env = await astore_env(store, ctx.scratch, ctx.services, near_cache=cached)
        except ServiceUnavailable as exc:
            setup.missing.append(not_available(key, label, "us", str(exc)))
            continue
        ctx.step(f"opening {label}")
        service = await started_service(lab_settings(env))
        setup.services.append(service)
        user = await service.register(EMAIL, PASSWORD)
        secret = (await service.sessions.start(user.id)).secret

        def lookup(service: AuthService = service, secret: str = secret) -> Awaitable[object]:
            return service.authenticate(secret)

        setup.add(key, label, lookup)


async def _tokens(ctx: LabContext, setup: _Setup, budget: Budget) -> None:
    needed = budget.rounds * (budget.warmup + budget.calls) + 10
    for alg in ALGORITHMS:
        ctx.step(f"minting {needed:,} {alg} tokens")
        service = await started_service(
            lab_settings({}, database_url="memory://", token_algorithm=alg)
        )
        setup.services.append(service)
        user = await service.register(EMAIL, PASSWORD)
        pair = await service.tokens.issue_for(user.id)
        access = service.tokens.access
        fresh = iter(
            [access.issue(user_id=user.id, family_id=pair.family.id).token for _ in range(needed)]
        )
        raw = iter(
            [access.issue(user_id=user.id, family_id=pair.family.id).token for _ in range(needed)]
        )
        warm = pair.access_token
        await service.authenticate_bearer(warm)

        async def signature(keys: Any = access.keys, raw: Any = raw) -> object:
            return codec.decode_compact(next(raw), keys.lookup, typ=ACCESS_TYP)

        def cold(service: AuthService = service, fresh: Any = fresh) -> Awaitable[object]:
            return service.authenticate_bearer(next(fresh))

        def hot(service: AuthService = service, warm: str = warm) -> Awaitable[object]:
            return service.authenticate_bearer(warm)

        setup.add(f"jwt.{alg}.signature", f"{alg}: signature only (codec)", signature)
        setup.add(f"jwt.{alg}.cold", f"{alg}: whole check, cold (new token)", cold)
        setup.add(f"jwt.{alg}.warm", f"{alg}: whole check, warm (cached token)", hot)
        if alg == "EdDSA":
            claims = await service.tokens.verify(warm)
            revocations = access.revocations

            async def revoked(claims: Any = claims, revocations: Any = revocations) -> object:
                return revocations.is_revoked(claims)

            setup.add("jwt.revocation", "revocation check alone (in-process denylist)", revoked)


GATEWAY = {
    "gateway.internal": "gateway internal-token check, cold (signature and claims)",
    "gateway.internal.warm": "gateway internal-token check, warm (verifier's cache)",
}


async def _landing(setup: _Setup) -> None:
    try:
        setup.add("dpop.proof", "DPoP proof verification", await dpop_check())
    except NotLanded as exc:
        setup.missing.append(not_available("dpop.proof", "DPoP proof verification", "us", str(exc)))
    try:
        calls = await gateway_checks()
    except NotLanded as exc:
        setup.missing += [not_available(k, label, "us", str(exc)) for k, label in GATEWAY.items()]
        return
    for (key, label), call in zip(GATEWAY.items(), calls, strict=True):
        setup.add(key, label, call)


async def _measure(ctx: LabContext, result: CellResult) -> None:
    budget = ctx.pick(
        Budget(rounds=2, warmup=20, calls=150), Budget(rounds=5, warmup=100, calls=1000)
    )
    setup = _Setup()
    try:
        await _sessions(ctx, setup)
        await _tokens(ctx, setup, budget)
        await _landing(setup)
        ctx.step(f"timing {len(setup.variants)} checks, {budget.rounds} rounds")
        timed = await time_variants(
            setup.variants, budget, noise=ctx.noise, cell=result.id, deadline=ctx.deadline
        )
    finally:
        await setup.aclose()
    for key, (stats, samples) in timed.items():
        result.figures.append(
            Figure(
                key, setup.labels[key], "us", value=stats.p50, stats=stats, extra={"p99": stats.p99}
            )
        )
        if key.startswith("session.") or key in ("jwt.EdDSA.cold", "jwt.EdDSA.warm"):
            result.series.append(cdf(key, samples))
    result.figures += setup.missing
    result.notes.append(
        f"{budget.rounds} interleaved rounds of {budget.warmup} warm-up and {budget.calls} "
        "measured calls per check; the value is the p50 over all rounds; the spread is the "
        "range of the per-round medians."
    )


def measure(ctx: LabContext, result: CellResult) -> None:
    """Fill ``result``."""
    asyncio.run(_measure(ctx, result))
