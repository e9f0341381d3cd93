"""The hybrid gateway behind real nginx and Caddy, two nodes on PostgreSQL + Redis (issue 10).

A browser signs in at the edge; its requests to the example service reach it with an
internal JWT for that service's audience and without any of velvetrope's cookies;
forged credentials from the client never get through; unsafe requests need the CSRF
token; a sign-out on one node is refused at the edge on the very next request through
the other; and the service itself refuses every token that is not a live internal
token for it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from tests.support.gateway import GatewayStack, gateway_stack
from tests.support.postgres import require_postgres, temp_database
from tests.support.redis import delete_prefix, new_prefix, require_redis
from tests.support.server import COOKIE, Servers
from tests.support.services import PASSWORD
from velvetrope.client import DPoPAuth
from velvetrope.core.gateway import INTERNAL_TYP, validate_internal_claims
from velvetrope.core.tokens import codec
from velvetrope.stores.postgres import PostgresStores
from velvetrope.stores.registry import StoreOptions

pytestmark = pytest.mark.e2e

EMAIL = "ann@example.com"
APP_COOKIE = "theme=dark"  # the service's own cookie: it must still arrive
CSRF_COOKIE = "__Host-velvetrope-csrf"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    require_postgres()
    with temp_database() as url:
        yield url


@pytest.fixture
def prefix() -> Iterator[str]:
    require_redis()
    chosen = new_prefix()
    yield chosen
    asyncio.run(delete_prefix(chosen))


class Browser:
    """A signed-in browser at the edge: its session cookie and CSRF token."""

    def __init__(self, stack: GatewayStack) -> None:
        self.stack = stack
        self.http = stack.edge_client()
        self.http.headers["Origin"] = stack.origin
        register = self.http.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert register.status_code in {201, 409}, register.text
        page = self.http.get("/signin")  # sets the CSRF (pre-session) cookie, as for a browser
        assert page.status_code == 200, page.text
        login = self.http.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
        assert login.status_code == 200, login.text
        set_cookies = dict(
            h.split(";", 1)[0].split("=", 1)
            for h in [*page.headers.get_list("set-cookie"), *login.headers.get_list("set-cookie")]
        )
        self.secret = set_cookies[COOKIE]
        self.csrf_cookie = f"{CSRF_COOKIE}={set_cookies[CSRF_COOKIE]}"
        self.csrf = login.json()["csrf_token"]
        self.user_id = login.json()["user"]["id"]

    def cookie(self) -> dict[str, str]:
        return {"Cookie": f"{APP_COOKIE}; {COOKIE}={self.secret}"}

    def jar(self) -> dict[str, str]:
        """Every cookie a real browser sends: the service's, the session's, the CSRF
        cookie, and a duplicate session cookie (a stale one from an older sign-in)."""
        return {
            "Cookie": f"{APP_COOKIE}; {COOKIE}={self.secret}; {self.csrf_cookie}; "
            f"{COOKIE}=stale{self.secret[5:]}"
        }


def velvetrope_cookies(cookie: str | None) -> list[str]:
    """The velvetrope cookies in a ``Cookie`` header (whatever their case or prefix)."""
    found = [c.strip() for c in (cookie or "").split(";")]
    return [c for c in found if "velvetrope-" in c.lower()]


Proxy = Literal["nginx", "caddy"]
EdgeStack = Callable[..., AbstractContextManager[GatewayStack]]


@pytest.fixture
def edge_stack(tmp_path: Path, servers: Servers, postgres_url: str, prefix: str) -> EdgeStack:
    """Starts the stack behind a proxy, with more ``VELVETROPE_*`` for the nodes if given."""

    def start(
        proxy: Proxy, settings: Mapping[str, str] | None = None
    ) -> AbstractContextManager[GatewayStack]:
        return gateway_stack(
            tmp_path,
            servers,
            database_url=postgres_url,
            prefix=prefix,
            proxy=proxy,
            settings=settings,
        )

    return start


def jwks_keys(stack: GatewayStack) -> dict[str, tuple[codec.Jwk, codec.Algorithm]]:
    document = stack.client(str(stack.nodes[0].base_url)).get("/auth/gateway/jwks.json").json()
    return {
        k["kid"]: (codec.jwk_from_json(json.dumps(k), k["alg"]), k["alg"]) for k in document["keys"]
    }


def ready(stack: GatewayStack) -> list[dict[str, int]]:
    """Each node's mint counters (``/ready``)."""
    found = []
    for node in stack.nodes:
        gateway = stack.client(str(node.base_url)).get("/ready").json()["gateway"]
        found.append({"minted": gateway["minted"], "hits": gateway["mint_cache"]["hits"]})
    return found


def signed_in_scenario(stack: GatewayStack) -> Browser:
    """The main scenario, the same behind nginx and Caddy."""
    browser = Browser(stack)
    edge = stack.edge_client()

    # A valid session reaches the service with an internal JWT for its audience,
    # without any of velvetrope's cookies, whatever the client forged.
    forged = {
        **browser.jar(),
        "X-Velvetrope-Token": "forged-internal-token",
        "X-Velvetrope-Audience": "billing",
        "X-Original-Method": "GET",
        "X-Original-URI": "/elsewhere",
        "DPoP": "forged.dpop.proof",
    }
    seen = edge.get("/api/orders/whoami", headers=forged)
    assert seen.status_code == 200, seen.text + stack.edge.log()
    body = seen.json()
    assert body["sub"] == browser.user_id
    assert body["aud"] == "orders"
    assert body["cookie"].strip("; ") == APP_COOKIE  # velvetrope's cookies stripped
    assert velvetrope_cookies(body["cookie"]) == []
    assert body["x_velvetrope_token"] in (None, "")
    assert body["dpop"] in (None, "")
    [authorization] = body["authorization"]
    token = authorization.removeprefix("Bearer ")
    assert "forged" not in authorization
    # However many velvetrope cookies a client sends, none reaches the service.
    many = "; ".join([APP_COOKIE, *(f"{n}=x{i}" for i, n in enumerate([COOKIE, CSRF_COOKIE] * 3))])
    crowded = edge.get(
        "/api/orders/whoami", headers={"Cookie": f"{browser.jar()['Cookie']}; {many}"}
    )
    assert crowded.status_code == 200, crowded.text
    assert velvetrope_cookies(crowded.json()["cookie"]) == []
    # A credential that is present decides: a forged token is refused at the edge
    # even with a live session cookie, and never reaches the service.
    bad_token = edge.get(
        "/api/orders/whoami",
        headers={**browser.cookie(), "Authorization": "Bearer forged.by.client"},
    )
    assert bad_token.status_code == 401, bad_token.text
    assert bad_token.json()["error"] == "invalid_token"
    assert bad_token.headers["cache-control"] == "no-store"
    decoded = codec.decode_compact(token, jwks_keys(stack).get, typ=INTERNAL_TYP)
    claims = validate_internal_claims(
        decoded.claims,
        issuer=stack.origin,
        audience="orders",
        now=datetime.now(UTC),
        leeway=timedelta(seconds=5),
    )
    assert claims.sid
    assert claims.sub == browser.user_id
    assert (claims.expires_at - claims.issued_at) <= timedelta(seconds=61)

    # An unsafe request without the CSRF token is refused at the edge.
    unsafe = {**browser.cookie(), "Origin": stack.origin, "Content-Type": "application/json"}
    refused = edge.post("/api/orders/", headers=unsafe, content=b"{}")
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "csrf_failed"
    cross_site = {**unsafe, "Origin": "https://evil.example", "X-CSRF-Token": browser.csrf}
    assert edge.post("/api/orders/", headers=cross_site, content=b"{}").status_code == 403
    allowed = edge.post(
        "/api/orders/", headers={**unsafe, "X-CSRF-Token": browser.csrf}, content=b"{}"
    )
    assert allowed.status_code == 200, allowed.text

    # Without a session: browsers go to /signin, API clients get the JSON error.
    page = edge.get("/api/orders/whoami", headers={"Accept": "text/html"})
    assert page.status_code == 302
    assert page.headers["location"].endswith("/signin")
    api = edge.get("/api/orders/whoami", headers={"Accept": "application/json"})
    assert api.status_code == 401
    assert api.json()["error"] in {"session_invalid", "not_authenticated"}
    assert "set-cookie" not in api.headers
    # The edge check itself is not reachable from outside.
    assert edge.get("/auth/gateway", headers=browser.cookie()).status_code == 404
    return browser


def sign_out_on_b_refused_through_a(stack: GatewayStack, browser: Browser) -> None:
    """Sign out on the node the edge does not ask for this session (nginx hashes a
    session's checks to one node); the very next request through the edge, to the
    other node, is 401 (no waiting for the push), and no node serves or mints a token
    for it."""
    edge = stack.edge_client()
    before = ready(stack)
    for _ in range(4):
        assert edge.get("/api/orders/ping", headers=browser.cookie()).status_code == 200
    after = ready(stack)
    asked = [i for i, (b, a) in enumerate(zip(before, after, strict=True)) if a != b]
    assert asked
    other = next((i for i in range(len(stack.nodes)) if i not in asked), 1)
    node_b = stack.client(str(stack.nodes[other].base_url))
    out = node_b.post(
        "/auth/logout",
        headers={**browser.cookie(), "Origin": stack.origin, "X-CSRF-Token": browser.csrf},
    )
    assert out.status_code == 204, out.text
    # The very first request after the sign-out's answer: node A reads the session from
    # the shared store, not from its near-cache, so no push has to arrive first.
    before = ready(stack)
    for _ in range(4):
        refused = edge.get("/api/orders/ping", headers=browser.cookie())
        assert refused.status_code == 401, refused.text
    # Nothing minted, nothing served from a cache (the node that signed out minted
    # nothing either: it is not asked for this session).
    assert ready(stack) == before


@pytest.mark.parametrize("proxy", ["nginx", "caddy"])
def test_HYB_04_main_scenario_behind_the_edge(edge_stack: EdgeStack, proxy: Proxy) -> None:
    with edge_stack(proxy) as stack:
        browser = signed_in_scenario(stack)
        sign_out_on_b_refused_through_a(stack, browser)


def internal_key(database_url: str) -> tuple[codec.Jwk, codec.Algorithm, str]:
    """The gateway's current signing key, read from the store (to forge an expired token)."""

    async def read() -> tuple[codec.Jwk, codec.Algorithm, str]:
        stores = PostgresStores.from_url(database_url, StoreOptions())
        await stores.start()
        try:
            [record, *_] = await stores.keys.list_keys("internal")
        finally:
            await stores.aclose()
        alg: codec.Algorithm = record.alg  # type: ignore[assignment]
        return codec.jwk_from_json(record.private_jwk, alg), alg, record.kid

    return asyncio.run(read())


def test_HYB_06_the_service_refuses_every_token_but_a_live_internal_one(
    edge_stack: EdgeStack, postgres_url: str
) -> None:
    with edge_stack("nginx") as stack:
        browser = Browser(stack)
        service = stack.client(stack.service_url)
        node_a = stack.client(str(stack.nodes[0].base_url))

        def minted(audience: str) -> str:
            answer = node_a.get(
                "/auth/gateway",
                headers={
                    **browser.cookie(),
                    "X-Original-Method": "GET",
                    "X-Velvetrope-Audience": audience,
                },
            )
            assert answer.status_code == 200, answer.text
            return answer.headers["X-Velvetrope-Token"]

        def status(token: str, **extra: str) -> int:
            headers = {"Authorization": f"Bearer {token}", **extra}
            return service.get("/api/orders/whoami", headers=headers).status_code

        good = minted("orders")
        assert status(good) == 200
        # A browser access token (at+jwt, the other key ring).
        access = node_a.post(
            "/auth/token",
            data={"grant_type": "password", "username": EMAIL, "password": PASSWORD},
        ).json()["access_token"]
        assert status(access) == 401
        # A token the gateway minted for another service.
        assert status(minted("billing")) == 401
        # An expired internal token, signed with the real key.
        key, alg, kid = internal_key(postgres_url)
        now = int(time.time())
        expired = codec.sign_compact(
            {
                "iss": stack.origin,
                "aud": "orders",
                "sub": browser.user_id,
                "sid": "x" * 22,
                "jti": "j" * 22,
                "iat": now - 120,
                "nbf": now - 120,
                "exp": now - 60,
            },
            key=key,
            alg=alg,
            kid=kid,
            typ=INTERNAL_TYP,
        )
        assert status(expired) == 401
        # The edge cookie is never a credential at the service.
        assert service.get("/api/orders/whoami", headers=browser.cookie()).status_code == 401
        assert status(good, Cookie=f"{COOKIE}={browser.secret}") == 401

        # Subscribed to pushes: after sign-out the already-minted token dies at once.
        out = node_a.post(
            "/auth/logout",
            headers={**browser.cookie(), "Origin": stack.origin, "X-CSRF-Token": browser.csrf},
        )
        assert out.status_code == 204
        deadline = time.monotonic() + 2.0  # pushes take milliseconds; 60 s is the token's life
        while status(good) == 200:
            health = service.get("/health").json()
            assert time.monotonic() < deadline, (
                f"the service still accepts a revoked token: {health}"
            )
            time.sleep(0.005)


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's payload, unverified (to compare the ids it names)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


@pytest.mark.parametrize("proxy", ["nginx", "caddy"])
def test_HYB_14_a_dpop_client_reaches_the_service_through_the_edge(
    edge_stack: EdgeStack, proxy: Proxy
) -> None:
    with edge_stack(proxy) as stack:
        browser = Browser(stack)  # registers the account
        auth = DPoPAuth(origin=stack.origin)
        api = stack.edge_client()
        api.auth = auth
        form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
        assert api.post("/auth/token", data=form).status_code == 200
        assert auth.access_token is not None
        access = claims_of(auth.access_token)

        # The shipped client, one line: the proof names the original request (the query
        # is not part of htu), and the service gets the internal token alone.
        seen = api.get("/api/orders/whoami?page=2")
        assert seen.status_code == 200, seen.text + stack.edge.log()
        body = seen.json()
        assert body["sub"] == browser.user_id
        assert body["aud"] == "orders"
        assert body["sid"] == access["sid"]  # the refresh family's handle
        assert body["dpop"] in (None, "")
        [authorization] = body["authorization"]
        internal = authorization.removeprefix("Bearer ")
        assert internal != auth.access_token
        assert claims_of(internal)["exp"] <= access["exp"]
        # Not ambient: an unsafe request needs no CSRF token.
        assert api.post("/api/orders/", content=b"{}").status_code == 200

        plain = stack.edge_client()
        whoami = f"{stack.origin}/api/orders/whoami"

        def send(proof: str, *, scheme: str = "DPoP", path: str = "/api/orders/whoami") -> Any:
            headers = {"Authorization": f"{scheme} {auth.access_token}", "DPoP": proof}
            return plain.get(path, headers=headers)

        def assert_refused(response: httpx.Response, error: str) -> None:
            assert response.status_code == 401, response.text
            assert response.json()["error"] == error
            assert response.headers["www-authenticate"].startswith(f'DPoP error="{error}"')
            assert response.headers["cache-control"] == "no-store"

        proof = auth.proof("GET", whoami, access_token=auth.access_token)
        assert send(proof).status_code == 200
        assert_refused(send(proof), "invalid_dpop_proof")  # replayed
        other_url = auth.proof(
            "GET", f"{stack.origin}/api/orders/ping", access_token=auth.access_token
        )
        assert_refused(send(other_url), "invalid_dpop_proof")
        other_method = auth.proof("POST", whoami, access_token=auth.access_token)
        assert_refused(send(other_method), "invalid_dpop_proof")
        # The bound token as a bearer token, or with no proof: the DPoP challenge.
        as_bearer = plain.get(
            "/api/orders/whoami", headers={"Authorization": f"Bearer {auth.access_token}"}
        )
        assert_refused(as_bearer, "invalid_token")

        # Revoking the family (RFC 7009, on either node) ends it at the edge, and the
        # subscribed service refuses the internal token already minted for it.
        service = stack.client(stack.service_url)
        assert (
            service.get("/api/orders/whoami", headers={"Authorization": authorization}).status_code
            == 200
        )
        node_b = stack.client(str(stack.nodes[1].base_url))
        assert node_b.post("/auth/revoke", data={"token": auth.refresh_token}).status_code == 200
        deadline = time.monotonic() + 2.0
        while (
            service.get("/api/orders/whoami", headers={"Authorization": authorization}).status_code
            == 200
        ):
            assert time.monotonic() < deadline, "the service still accepts the family's token"
            time.sleep(0.005)

        # The edge refuses the family's access token on the very next request: the node
        # it asks reads the revocation feed before it trusts a token, push or no push.
        assert_refused(
            send(auth.proof("GET", whoami, access_token=auth.access_token)), "invalid_token"
        )


@pytest.mark.parametrize("proxy", ["nginx", "caddy"])
def test_HYB_14_the_edge_passes_the_dpop_nonce_on(edge_stack: EdgeStack, proxy: Proxy) -> None:
    """With server nonces on, a proof without one is refused at the edge with
    ``use_dpop_nonce`` and the ``DPoP-Nonce`` to use; the shipped client follows it."""
    with edge_stack(proxy, {"VELVETROPE_DPOP_NONCE": "true"}) as stack:
        Browser(stack)  # registers the account
        key = codec.generate_proof_key("ES256")
        auth = DPoPAuth(key=key, origin=stack.origin)
        api = stack.edge_client()
        api.auth = auth
        form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
        assert api.post("/auth/token", data=form).status_code == 200
        assert auth.access_token is not None
        fresh = DPoPAuth(key=key, origin=stack.origin)  # the same key, no nonce yet
        proof = fresh.proof(
            "GET", f"{stack.origin}/api/orders/whoami", access_token=auth.access_token
        )
        refused = stack.edge_client().get(
            "/api/orders/whoami",
            headers={"Authorization": f"DPoP {auth.access_token}", "DPoP": proof},
        )
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"].startswith('DPoP error="use_dpop_nonce"')
        assert refused.headers["dpop-nonce"]
        assert api.get("/api/orders/whoami").status_code == 200
