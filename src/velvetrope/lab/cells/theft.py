"""Cell 9, theft: a stolen cookie or token replayed from another client.

Client A (its own connection and ``User-Agent``) signs in on a node; client B replays
A's session cookie, and A's access token, on ``/auth/me``. Without binding both are
accepted: a bearer credential is whoever holds it. With DBSC (sessions bound to a key in
the device) or DPoP (tokens bound to the client's key) the replay, which cannot sign
with A's key, must be refused: :func:`dbsc_replay` and :func:`dpop_replay` measure that
once those land.

Also observed here: an access token whose payload B edited (``sub``) is refused, the
sense in which claims "cannot be modified".
"""

from __future__ import annotations

import base64
import json
import re

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


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "00000000-0000-4000-8000-000000000000"
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{edited}.{signature}"


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

    def outcome(statuses: list[int]) -> str:
        word = (
            "accepted"
            if set(statuses) == {200}
            else ("refused" if 200 not in statuses else "mixed")
        )
        return f"{word}: {', '.join(map(str, statuses))}"

    return [
        Figure(
            "cookie.unbound",
            "stolen session cookie replayed by another client",
            "trials",
            value=float(TRIALS),
            outcome=outcome(seen["cookie"]),
        ),
        Figure(
            "bearer.unbound",
            "stolen access token replayed by another client",
            "trials",
            value=float(TRIALS),
            outcome=outcome(seen["bearer"]),
        ),
        Figure(
            "bearer.tampered",
            "access token with an edited claim (sub)",
            "trials",
            value=float(TRIALS),
            outcome=outcome(seen["tampered"]),
        ),
    ]


def measure(ctx: LabContext, result: CellResult) -> None:
    """Fill ``result``."""
    bound = [
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
            for key, label, adapter in bound:
                try:
                    status = adapter(node)
                    word = "refused" if status == 401 else "accepted"
                    result.figures.append(
                        Figure(key, label, "trials", value=1.0, outcome=f"{word}: {status}")
                    )
                except NotLanded as exc:
                    result.figures.append(not_available(key, label, "trials", str(exc)))
    except ServiceUnavailable as exc:
        for key, label in (
            ("cookie.unbound", "stolen session cookie replayed"),
            ("bearer.unbound", "stolen access token replayed"),
            ("bearer.tampered", "access token with an edited claim"),
        ):
            result.figures.append(not_available(key, label, "trials", str(exc)))
        for key, label, _adapter in bound:
            result.figures.append(not_available(key, label, "trials", str(exc)))
