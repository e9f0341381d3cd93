"""Cell 9, theft: a stolen cookie or token replayed from another client.

Client A (its own connection and ``User-Agent``) signs in on a node; client B replays
A's session cookie, and A's access token, on ``/auth/me``. Without binding both are
accepted: a bearer credential is whoever holds it. With DBSC (sessions bound to a key in
the device) or DPoP (tokens bound to the client's key) the replay, which cannot sign
with A's key, must be refused: :func:`dbsc_replay` and :func:`dpop_replay` measure that,
:data:`TRIALS` times each. Each figure's ``extra`` counts the trials accepted (200) and
refused (401, 403); any other status is reported as it is.

Also observed here: an access token whose payload B edited (``sub``) is refused, the
sense in which claims "cannot be modified"; and whether the session cookie a sign-in
sets is a browser-session cookie (no ``Max-Age``/``Expires``: gone when the browser
closes) or a persistent one.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable

from velvetrope.client import DPoPAuth
from velvetrope.core.tokens import codec
from velvetrope.lab.context import LabContext
from velvetrope.lab.features import NotLanded
from velvetrope.lab.model import CellResult, Figure, not_available
from velvetrope.lab.servers import EMAIL, PASSWORD, Node, nodes
from velvetrope.lab.services import ServiceUnavailable
from velvetrope.lab.stores import store_env

__all__ = ["dbsc_replay", "dpop_replay", "measure"]

TRIALS = 3
REFUSED = (401, 403)
UNBOUND = (
    ("cookie.unbound", "stolen session cookie replayed by another client"),
    ("bearer.unbound", "stolen access token replayed by another client"),
    ("bearer.tampered", "access token with an edited claim (sub)"),
)
PERSISTENCE = (
    "cookie.persistence",
    "session cookie set by sign-in: kept after the browser closes?",
)


_OFFER = re.compile(r'path="(?P<path>[^"]+)";challenge="(?P<challenge>[A-Za-z0-9_-]+)"')


def dbsc_replay(node: Node) -> int:
    """The status a DBSC-bound session cookie gets when replayed by another client.

    Client A signs in, answers the registration offer with a software device key (as
    Chromium does) and so binds its session; client B, which holds A's session cookie
    but not A's key (so no live bound cookie), asks for ``/auth/me``.
    """
    alice = node.client(user_agent="Alice's browser")
    mallory = node.client(user_agent="curl/8.0 (another machine)")
    try:
        reply = alice.request(
            "POST",
            "/auth/login",
            json_body={"email": EMAIL, "password": PASSWORD},
            headers={"Origin": node.origin},
        )
        offer = _OFFER.search(" ".join(reply.header("secure-session-registration")))
        cookie = next(
            (c.split(";", 1)[0] for c in reply.header("set-cookie") if "-session=" in c), None
        )
        if reply.status != 200 or offer is None or cookie is None:
            raise ServiceUnavailable(f"sign-in offered no device binding ({reply.status})")
        key = codec.generate_proof_key("ES256")
        proof = codec.sign_proof({"jti": offer["challenge"]}, key=key, alg="ES256", typ="dbsc+jwt")
        headers = {"Cookie": cookie, "Origin": node.origin, "Sec-Fetch-Site": "same-origin"}
        bound = alice.request(
            "POST", offer["path"], headers={**headers, "Secure-Session-Response": proof}
        )
        if bound.status != 200:
            raise ServiceUnavailable(f"device registration answered {bound.status}")
        return mallory.request("GET", "/auth/me", headers={"Cookie": cookie}).status
    finally:
        alice.close()
        mallory.close()


def dpop_replay(node: Node) -> int:
    """The status a DPoP-bound access token gets when replayed by another client.

    Client A gets a token bound to its key (a DPoP proof on ``/auth/token``); client B
    replays it with a proof signed by B's own key.
    """
    alice_key, mallory_key = DPoPAuth(), DPoPAuth()
    alice = node.client(user_agent="Alice's app")
    mallory = node.client(user_agent="curl/8.0 (another machine)")
    try:
        reply = alice.request(
            "POST",
            "/auth/token",
            form={"grant_type": "password", "username": EMAIL, "password": PASSWORD},
            headers={"DPoP": alice_key.proof("POST", node.origin + "/auth/token")},
        )
        if reply.status != 200 or reply.json().get("token_type") != "DPoP":
            raise ServiceUnavailable(f"the DPoP token grant answered {reply.status}")
        token = str(reply.json()["access_token"])
        me = node.origin + "/auth/me"
        own = {
            "Authorization": f"DPoP {token}",
            "DPoP": alice_key.proof("GET", me, access_token=token),
        }
        if alice.request("GET", "/auth/me", headers=own).status != 200:
            raise ServiceUnavailable("the DPoP-bound token was refused to its own client")
        stolen = {
            "Authorization": f"DPoP {token}",
            "DPoP": mallory_key.proof("GET", me, access_token=token),
        }
        return mallory.request("GET", "/auth/me", headers=stolen).status
    finally:
        alice.close()
        mallory.close()


def cookie_persistence(set_cookie: str) -> Figure:
    """Whether the session cookie a sign-in set outlives the browser: a ``Max-Age`` or
    ``Expires`` attribute makes it persistent; without either the browser drops it when
    it closes (unless it restores sessions)."""
    attributes = {
        name.strip().lower(): value.strip()
        for name, _, value in (part.partition("=") for part in set_cookie.split(";")[1:])
    }
    max_age = attributes.get("max-age")
    persistent = max_age is not None or "expires" in attributes
    extra = {"persistent": float(persistent)}
    if max_age is not None and max_age.lstrip("-").isdigit():
        extra["max_age_s"] = float(max_age)
    outcome = (
        "persistent: " + (f"Max-Age={max_age}" if max_age else f"Expires={attributes['expires']}")
        if persistent
        else "browser-session cookie: no Max-Age, no Expires"
    )
    return Figure(
        *PERSISTENCE,
        "trials",
        value=1.0,
        outcome=outcome,
        extra=extra,
    )


def _sign_in_cookie(node: Node) -> Figure:
    """The session ``Set-Cookie`` of a plain sign-in (no "remember me"), judged.

    Raises:
        ServiceUnavailable: The sign-in failed or set no session cookie.
    """
    client = node.client(user_agent="Alice's browser")
    try:
        reply = client.request(
            "POST",
            "/auth/login",
            json_body={"email": EMAIL, "password": PASSWORD},
            headers={"Origin": node.origin},
        )
    finally:
        client.close()
    found = next((c for c in reply.header("set-cookie") if "-session=" in c), None)
    if reply.status != 200 or found is None:
        raise ServiceUnavailable(f"sign-in set no session cookie ({reply.status})")
    return cookie_persistence(found)


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "00000000-0000-4000-8000-000000000000"
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{edited}.{signature}"


def replay_figure(key: str, label: str, statuses: list[int]) -> Figure:
    """A replay's trials: accepted (200), refused (401, 403) or, for any other status,
    what it was; ``extra`` counts the accepted and refused trials and keeps the status
    when every trial got the same one."""
    accepted = statuses.count(200)
    refused = sum(status in REFUSED for status in statuses)
    if accepted == len(statuses):
        word = "accepted"
    elif refused == len(statuses):
        word = "refused"
    elif accepted + refused == len(statuses):
        word = "mixed"
    else:
        word = "unexpected"
    extra = {"accepted": float(accepted), "refused": float(refused)}
    if len(set(statuses)) == 1:
        extra["status"] = float(statuses[0])
    return Figure(
        key,
        label,
        "trials",
        value=float(len(statuses)),
        outcome=f"{word}: {', '.join(map(str, statuses))}",
        extra=extra,
    )


def _replays(ctx: LabContext, result: CellResult, node: Node) -> list[Figure]:
    seen: dict[str, list[int]] = {"cookie": [], "bearer": [], "tampered": []}
    for trial in range(TRIALS):
        with ctx.noise.round(result.id, f"trial {trial + 1}"):
            alice = node.client(user_agent="Alice's browser")
            mallory = node.client(user_agent="curl/8.0 (another machine)")
            try:
                name, value, _ = alice.session_cookie()
                token = alice.tokens()["access_token"]
                cookie, bearer = {"Cookie": f"{name}={value}"}, {"Authorization": f"Bearer {token}"}
                seen["cookie"].append(mallory.request("GET", "/auth/me", headers=cookie).status)
                seen["bearer"].append(mallory.request("GET", "/auth/me", headers=bearer).status)
                forged = {"Authorization": f"Bearer {_tampered(token)}"}
                seen["tampered"].append(mallory.request("GET", "/auth/me", headers=forged).status)
            finally:
                alice.close()
                mallory.close()
    return [
        replay_figure(key, label, seen[name])
        for (key, label), name in zip(UNBOUND, ("cookie", "bearer", "tampered"), strict=True)
    ]


def _bound(
    ctx: LabContext, key: str, label: str, adapter: Callable[[Node], int], node: Node
) -> Figure:
    """``TRIALS`` replays of a bound credential, or "not available" with the adapter's
    reason (not landed, or the node did not offer the binding)."""
    statuses = []
    try:
        for trial in range(TRIALS):
            with ctx.noise.round("theft", f"{key} trial {trial + 1}"):
                statuses.append(adapter(node))
    except (NotLanded, ServiceUnavailable) as exc:
        return not_available(key, label, "trials", str(exc))
    return replay_figure(key, label, statuses)


def measure(ctx: LabContext, result: CellResult) -> None:
    """Fill ``result``."""
    bound: list[tuple[str, str, Callable[[Node], int]]] = [
        ("cookie.dbsc", "stolen cookie replayed, session bound with DBSC", dbsc_replay),
        ("bearer.dpop", "stolen token replayed, token bound with DPoP", dpop_replay),
    ]
    try:
        env = store_env("sqlite", ctx.scratch, ctx.services)
        # No grace after sign-in for a session about to be bound: the replay comes at once.
        env = {**env, "VELVETROPE_SESSION_BINDING_GRACE": "0"}
        with nodes(1, env, ctx.scratch) as (node,):
            client = node.client()
            client.sign_up()
            client.close()
            ctx.step(f"{TRIALS} replays of each credential")
            result.figures += _replays(ctx, result, node)
            result.figures.append(_sign_in_cookie(node))
            for key, label, adapter in bound:
                ctx.step(f"{TRIALS} replays of a bound credential ({key})")
                result.figures.append(_bound(ctx, key, label, adapter, node))
    except ServiceUnavailable as exc:
        # Only what was not measured yet: a figure is never listed twice.
        have = {figure.key for figure in result.figures}
        for key, label in [*UNBOUND, PERSISTENCE, *((k, label) for k, label, _a in bound)]:
            if key not in have:
                result.figures.append(not_available(key, label, "trials", str(exc)))
