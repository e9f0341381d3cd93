"""An example service behind velvetrope's hybrid gateway: it trusts the internal JWT.

It never sees the browser's cookie or session, and never asks velvetrope about a
request: it verifies the ``Authorization: Bearer`` token the edge forwarded against the
gateway's JWKS, and (optionally) listens to velvetrope's revocation pushes so a signed-out
session's tokens stop working at once.

Run it (the README's "The hybrid gateway" walks through the whole edge)::

    ORDERS_JWKS_URL=http://127.0.0.1:8001/auth/gateway/jwks.json \\
    ORDERS_ISSUER=http://127.0.0.1:8080 \\
    ORDERS_REDIS_URL=redis://127.0.0.1:6379/0 \\
    python examples/orders_service.py --port 9001

Settings (environment): ``ORDERS_JWKS_URL`` (required), ``ORDERS_ISSUER`` (required: the
gateway's ``VELVETROPE_GATEWAY_ISSUER``, by default its public origin),
``ORDERS_AUDIENCE`` (``orders``), ``ORDERS_REDIS_URL`` and ``ORDERS_REDIS_PREFIX``
(``velvetrope:``) or ``ORDERS_DATABASE_URL`` (PostgreSQL) to subscribe to revocations.
A missing or malformed setting stops it at start-up with a message naming the variable.
"""

import argparse
import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from typing import Annotated

import uvicorn
from fastapi import Depends, FastAPI, Request

from velvetrope.integrations import (
    InternalAuth,
    InternalClaims,
    InternalTokenVerifier,
    RevokedSessions,
)

REQUIRED = {
    "ORDERS_JWKS_URL": "the gateway's JWKS, e.g. http://127.0.0.1:8001/auth/gateway/jwks.json",
    "ORDERS_ISSUER": "the gateway's VELVETROPE_GATEWAY_ISSUER (by default its public origin)",
}
VARIABLES = {
    "jwks_url": "ORDERS_JWKS_URL",
    "issuer": "ORDERS_ISSUER",
    "audience": "ORDERS_AUDIENCE",
}


def required(name: str) -> str:
    """The variable's value; a start-up message naming it when it is missing or blank."""
    value = os.environ.get(name, "")
    if not value.strip():
        raise SystemExit(f"orders service: {name} is required: {REQUIRED[name]}")
    return value


def build_app() -> FastAPI:
    """The service, configured from the environment.

    Raises:
        SystemExit: A setting is missing or malformed (the message names the variable).
    """
    revoked = RevokedSessions()
    subscribe = os.environ.get("ORDERS_REDIS_URL") or os.environ.get("ORDERS_DATABASE_URL")
    try:
        verifier = InternalTokenVerifier(
            jwks_url=required("ORDERS_JWKS_URL"),
            issuer=required("ORDERS_ISSUER"),
            audience=os.environ.get("ORDERS_AUDIENCE", "orders"),
            revoked=revoked.is_revoked if subscribe else None,
        )
    except ValueError as exc:  # the message starts with the argument's name
        variable = VARIABLES.get(str(exc).split(" ", 1)[0], "an ORDERS_* variable")
        raise SystemExit(f"orders service: {variable}: {exc}") from None
    auth = InternalAuth(verifier)
    Caller = Annotated[InternalClaims, Depends(auth)]

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        redis_url = os.environ.get("ORDERS_REDIS_URL")
        database_url = os.environ.get("ORDERS_DATABASE_URL")
        listener = None
        if redis_url:
            prefix = os.environ.get("ORDERS_REDIS_PREFIX", "velvetrope:")
            listener = asyncio.create_task(revoked.listen_redis(redis_url, prefix=prefix))
        elif database_url:
            listener = asyncio.create_task(revoked.listen_postgres(database_url))
        if listener is not None:
            async with asyncio.timeout(10):
                await revoked.wait_connected()
        try:
            yield
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)

    app = FastAPI(title="orders (example service behind velvetrope)", lifespan=lifespan)
    InternalAuth.install(app)

    @app.get("/health")
    async def health() -> dict[str, object]:
        return {
            "status": "ok",
            "revocations_connected": revoked.connected,
            "revocations_received": revoked.received,
        }

    @app.get("/api/orders/whoami")
    async def whoami(request: Request, claims: Caller) -> dict[str, object]:
        # What reached the service, so the end-to-end tests can see what the edge forwarded.
        return {
            "sub": claims.sub,
            "sid": claims.sid,
            "aud": claims.aud,
            "jti": claims.jti,
            "cookie": request.headers.get("cookie"),
            "authorization": request.headers.getlist("authorization"),
            "x_velvetrope_token": request.headers.get("x-velvetrope-token"),
            "dpop": request.headers.get("dpop"),
        }

    @app.post("/api/orders/")
    async def create(claims: Caller) -> dict[str, str]:
        return {"order": secrets.token_hex(8), "for": claims.sub}

    @app.get("/api/orders/ping")
    async def ping(claims: Caller) -> dict[str, str]:
        return {"user": claims.sub}

    @app.get("/direct/ping")
    async def direct() -> dict[str, str]:
        # Unguarded: benchmarks compare the gateway against nginx -> service alone.
        return {"user": "nobody"}

    return app


def main() -> None:
    """``python examples/orders_service.py [--host 127.0.0.1] [--port 9001]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args()
    uvicorn.run(build_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
