"""Helpers for the token suites: hand-built JWS, services per algorithm, HTTP assertions.

Forged tokens are assembled here byte by byte (base64url + JSON + a signature made with
``cryptography``), never by asking a JOSE library to encode bad input: a library that
refuses to *produce* a malformed token says nothing about whether our verifier
*accepts* one (checklist Part 2).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.support.require import missing
from tests.support.services import (
    PASSWORD,
    TOKEN_POLICY,
    app_settings,
    asgi_client,
    new_service,
    running,
    started_service,
)
from velvetrope import AuthService, FrozenClock, PasswordHasher, Velvetrope, create_app
from velvetrope.core.tokens import codec
from velvetrope.core.tokens.codec import Algorithm, Jwk
from velvetrope.errors import InvalidToken
from velvetrope.stores import SQLiteStores, Stores
from velvetrope.stores.records import KeyRecord

INVALID_TOKEN_CHALLENGE = 'Bearer realm="velvetrope", error="invalid_token"'
INVALID_TOKEN_BODY = {"error": "invalid_token", "detail": InvalidToken.default_detail}
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
"""n, the order of the P-256 group (SEC 2)."""

# A rejection should cost microseconds; one second is "something fetched, slept or hung".

WYCHEPROOF_DIR = Path(__file__).resolve().parents[1] / "data" / "wycheproof"
"""The Wycheproof JOSE vectors, kept in the repository (``SOURCE.txt`` says which commit
of C2SP/wycheproof; Apache 2.0, ``LICENSE``)."""


def load_wycheproof(name: str) -> dict[str, Any] | None:
    """The parsed vector file, or ``None`` when it is missing."""
    path = WYCHEPROOF_DIR / name
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def require_wycheproof(name: str) -> None:
    """Skip (locally) or fail (in CI) when ``name`` is missing."""
    path = (WYCHEPROOF_DIR / name).resolve()
    if not path.is_file():
        missing(
            f"Wycheproof vectors not found at {path} (tests/data/wycheproof/ in the repository)"
        )


# --- base64url and JSON, by hand -----------------------------------------------------------


def b64url(raw: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Decode unpadded base64url (lenient: for reading our own genuine tokens)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segment(value: object) -> str:
    """A header/payload segment: compact JSON of ``value``, or ``bytes``/``str`` verbatim."""
    if isinstance(value, bytes):
        return b64url(value)
    if isinstance(value, str):
        return b64url(value.encode("utf-8"))
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def decode_part(token: str, index: int) -> dict[str, Any]:
    """The JSON object in segment ``index`` of a (genuine) compact token."""
    value: dict[str, Any] = json.loads(unb64url(token.split(".")[index]))
    return value


def hmac_sign(secret: bytes, message: bytes, alg: str = "HS256") -> bytes:
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    return hmac.new(secret, message, digest).digest()


def es256_raw(private: EllipticCurvePrivateKey, message: bytes) -> bytes:
    """An ES256 signature as JWS wants it: raw ``r || s``, 32 bytes each (RFC 7518 §3.4)."""
    r, s = decode_dss_signature(private.sign(message, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


Signer = Callable[[bytes], bytes]


def signer_for(jwk: Jwk, alg: Algorithm) -> Signer:
    """Sign with the *server's own* private key, through ``cryptography`` directly."""
    private: object = jwk.private_key
    if alg == "EdDSA":
        assert isinstance(private, Ed25519PrivateKey)
        return private.sign
    if alg == "ES256":
        assert isinstance(private, EllipticCurvePrivateKey)
        ec_key = private
        return lambda message: es256_raw(ec_key, message)
    if alg == "RS256":
        assert isinstance(private, RSAPrivateKey)
        rsa_key = private
        return lambda message: rsa_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    assert isinstance(private, bytes)
    secret = private
    return lambda message: hmac_sign(secret, message)


@dataclasses.dataclass(frozen=True)
class Forger:
    """Builds tokens by hand from a genuine one, signing with the server's real key.

    ``header`` and ``claims`` are those of a genuine access token the server issued, so
    a forged token that changes one thing differs from a valid token in that one thing.
    """

    service: AuthService
    genuine: str
    refresh_token: str
    header: dict[str, Any]
    claims: dict[str, Any]
    sign: Signer

    @property
    def kid(self) -> str:
        kid: str = self.header["kid"]
        return kid

    @property
    def now(self) -> int:
        return int(self.service.now().timestamp())

    def token(
        self,
        header: object | None = None,
        claims: object | None = None,
        *,
        signature: bytes | str | None = None,
    ) -> str:
        """``header.claims.signature``; each part defaults to the genuine one.

        ``header``/``claims`` may be a dict (compact JSON), ``str``/``bytes`` (used
        verbatim, for duplicate members, NaN and other JSON a dict cannot hold). The
        signature is made with the real key over the exact signing input, unless given
        (``bytes`` are base64url-encoded, a ``str`` is used as the segment verbatim).
        """
        head = segment(self.header if header is None else header)
        body = segment(self.claims if claims is None else claims)
        signing_input = f"{head}.{body}".encode("ascii")
        if signature is None:
            sig = b64url(self.sign(signing_input))
        elif isinstance(signature, bytes):
            sig = b64url(signature)
        else:
            sig = signature
        return f"{head}.{body}.{sig}"

    def with_header(self, **changes: object) -> dict[str, Any]:
        return {**self.header, **changes}

    def with_claims(self, **changes: object) -> dict[str, Any]:
        return {**self.claims, **changes}

    def signing_input(self, token: str) -> bytes:
        head, body, _ = token.split(".")
        return f"{head}.{body}".encode("ascii")


async def make_forger(service: AuthService, email: str) -> Forger:
    """Sign ``email`` in with the password grant and wrap the genuine token."""
    pair = await service.token_login(email, PASSWORD)
    signer = service.tokens.keys.signing_key
    return Forger(
        service=service,
        genuine=pair.access_token,
        refresh_token=pair.refresh_token,
        header=decode_part(pair.access_token, 0),
        claims=decode_part(pair.access_token, 1),
        sign=signer_for(signer.jwk, signer.alg),
    )


# --- services with other algorithms ----------------------------------------------------------

ServiceFactory = Callable[..., Awaitable[AuthService]]


@pytest.fixture(scope="session")
def rsa_jwk() -> Jwk:
    """One RSA key (3072 bits, slow to make) per run, seeded into every RS256 ring."""
    return codec.generate_jwk("RS256")


@pytest.fixture
def make_service(
    stores: Stores, clock: FrozenClock, hasher: PasswordHasher, rsa_jwk: Jwk
) -> ServiceFactory:
    """Build and start an ``AuthService`` on this test's store with policy ``changes``.

    Use it *instead of* the ``service`` fixture (both would share one store). RS256
    rings get the module's RSA key, so no test waits for another 3072-bit key.
    """

    async def make(**changes: Any) -> AuthService:
        policy = dataclasses.replace(TOKEN_POLICY, **changes)
        if policy.algorithm == "RS256":
            await stores.keys.add_key(
                KeyRecord(
                    kid=codec.thumbprint(rsa_jwk),
                    purpose="access",
                    alg="RS256",
                    private_jwk=codec.private_json(rsa_jwk),
                    created_at=clock(),
                )
            )
        return await started_service(stores, clock=clock, hasher=hasher, token_policy=policy)

    return make


@contextlib.asynccontextmanager
async def http_client(service: AuthService) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process HTTPS client for the app around ``service`` (already started)."""
    app = create_app(velvetrope=Velvetrope(app_settings(), service=service))
    async with asgi_client(app) as http:
        yield http


# --- assertions ------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_invalid_token_response(response: httpx.Response, token: str | None = None) -> None:
    """JWT-19: 401, the uniform body, the RFC 6750 challenge, no echo of the token."""
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == INVALID_TOKEN_BODY
    assert response.headers.get_list("www-authenticate") == [INVALID_TOKEN_CHALLENGE]
    if token is not None:
        for part in token.split("."):
            if len(part) >= 8:
                assert part not in response.text


async def assert_http_rejected(
    client: httpx.AsyncClient, token: str, *, path: str = "/auth/me"
) -> None:
    """Present ``token`` as a bearer token: 401 ``invalid_token``.

    How fast a refusal is belongs to the benchmarks (docs/style.md rule 23); here the
    reason a refusal gives (``assert_core_rejected``) shows which check stopped it."""
    response = await client.get(path, headers=bearer(token))
    assert_invalid_token_response(response, token)


async def assert_http_accepted(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await client.get("/auth/me", headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def assert_core_rejected(
    service: AuthService, token: str, reason: str | None = None
) -> InvalidToken:
    """``AccessTokens.verify`` raises ``InvalidToken`` (with ``reason``, when given)."""
    with pytest.raises(InvalidToken) as caught:
        await service.tokens.access.verify(token)
    if reason is not None:
        assert caught.value.reason.startswith(reason), caught.value.reason
    return caught.value


async def assert_rejected(
    service: AuthService,
    client: httpx.AsyncClient,
    token: str,
    reason: str | None = None,
) -> None:
    """Both layers: the core verifier and the HTTP edge."""
    await assert_core_rejected(service, token, reason)
    await assert_http_rejected(client, token)


def without(mapping: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k not in names}


Case = tuple[str, str | None]
"""A forged token and the ``InvalidToken.reason`` prefix expected for it (``None``: any)."""


async def reject_each(
    service: AuthService, client: httpx.AsyncClient, cases: Mapping[str, Case]
) -> None:
    """``assert_rejected`` for every case, reporting *all* failing cases, not the first."""
    failures: list[str] = []
    for name, (token, reason) in cases.items():
        try:
            await assert_rejected(service, client, token, reason)
        except (Exception, pytest.fail.Exception) as exc:  # noqa: BLE001 - collect every case
            failures.append(f"{name}: {type(exc).__name__}: {str(exc)[:300]}")
    assert not failures, (
        f"{len(failures)} of {len(cases)} cases were not rejected as expected:\n"
        + "\n".join(failures)
    )


async def accept_each(
    service: AuthService, client: httpx.AsyncClient, tokens: Mapping[str, str]
) -> None:
    """Every token passes both layers (positive controls and boundary cases)."""
    failures: list[str] = []
    for name, token in tokens.items():
        try:
            await service.tokens.access.verify(token)
            await assert_http_accepted(client, token)
        except (Exception, pytest.fail.Exception) as exc:  # noqa: BLE001 - collect every case
            failures.append(f"{name}: {type(exc).__name__}: {str(exc)[:300]}")
    assert not failures, f"{len(failures)} of {len(tokens)} were not accepted:\n" + "\n".join(
        failures
    )


@pytest.fixture
async def nodes(
    tmp_path: Path, clock: FrozenClock, hasher: PasswordHasher
) -> AsyncIterator[tuple[AuthService, AuthService]]:
    """Two processes (a server, the CLI; or two workers) on one SQLite file, each with
    its own connection, started in this order and closed after the test."""
    path = tmp_path / "vr.db"
    async with (
        running(new_service(SQLiteStores(path), clock=clock, hasher=hasher)) as first,
        running(new_service(SQLiteStores(path), clock=clock, hasher=hasher)) as second,
    ):
        yield first, second
