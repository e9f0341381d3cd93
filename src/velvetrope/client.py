"""``DPoPAuth``: DPoP-bound tokens (RFC 9449) for Python API clients, as an ``httpx.Auth``.

::

    import httpx
    from velvetrope.client import DPoPAuth

    with httpx.Client(base_url="https://auth.example.com", auth=DPoPAuth()) as http:
        http.post("/auth/token", data={"grant_type": "password",
                                       "username": "ann@example.com", "password": "..."})
        http.get("/auth/me")          # Authorization: DPoP <token> + a fresh proof

It holds a private key (a new P-256 key unless you pass one) and signs a proof for every
request: ``htm``, ``htu`` (the URL without query and fragment), a fresh ``iat`` and
``jti``, and ``ath`` next to an access token. It keeps the tokens the token endpoint
returns, sends the access token as ``Authorization: DPoP``, renews it with the refresh
token (bound to the same key: no other key can use it) when the server says it is no
longer valid, and when the server asks for a nonce (``use_dpop_nonce`` with a
``DPoP-Nonce`` header, at the token endpoint or a resource) it signs again with the nonce
and retries once. The private key never leaves the object.

Behind a proxy whose public origin differs from the URL you call, pass ``origin``: the
proofs then name that origin, as the server expects (``VELVETROPE_PUBLIC_ORIGIN``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Generator

import httpx

from velvetrope.core.tokens import codec
from velvetrope.core.tokens.codec import Jwk, ProofAlgorithm

__all__ = ["DPoPAuth"]

DPOP_TYP = "dpop+jwt"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class DPoPAuth(httpx.Auth):
    """Signs DPoP proofs, keeps DPoP-bound tokens, follows nonce requests.

    Attributes:
        access_token: The current access token (``None`` before the first grant).
        refresh_token: The current refresh token, bound to this object's key.
        jkt: The RFC 7638 thumbprint of the key (what the server binds tokens to).
    """

    requires_response_body = True

    def __init__(
        self,
        key: Jwk | None = None,
        *,
        alg: ProofAlgorithm = "ES256",
        token_path: str = "/auth/token",  # noqa: S107 - a path, not a password
        origin: str | None = None,
    ) -> None:
        """Args:
        key: The private key to sign with (a joserfc key); a new one for ``alg`` if omitted.
        alg: The proof algorithm (``ES256`` by default; ``EdDSA``, ``RS256``, ``PS256``).
        token_path: The token endpoint's path: responses from it are kept as tokens.
        origin: The origin proofs name instead of the requested URL's (behind a proxy).
        """
        if alg not in codec.PROOF_ALGORITHMS:
            raise ValueError(f"alg must be one of {', '.join(codec.PROOF_ALGORITHMS)}")
        self._key = key if key is not None else codec.generate_proof_key(alg)
        self._alg = alg
        self._token_path = token_path
        self._origin = origin.rstrip("/") if origin else None
        self._nonce: str | None = None
        self._lock = threading.Lock()
        self.access_token: str | None = None
        self.refresh_token: str | None = None
        self.jkt = codec.thumbprint(self._key)

    def proof(self, method: str, url: str, *, access_token: str | None = None) -> str:
        """A fresh proof for ``method`` and ``url`` (with ``ath`` for ``access_token``)."""
        target = httpx.URL(url)
        origin = self._origin or f"{target.scheme}://{target.netloc.decode('ascii')}"
        claims: dict[str, object] = {
            "htm": method,
            "htu": origin + target.raw_path.decode("ascii").split("?", 1)[0],
            "iat": int(time.time()),
            "jti": _b64(secrets.token_bytes(16)),
        }
        if self._nonce is not None:
            claims["nonce"] = self._nonce
        if access_token is not None:
            claims["ath"] = _b64(hashlib.sha256(access_token.encode("ascii")).digest())
        return codec.sign_proof(claims, key=self._key, alg=self._alg, typ=DPOP_TYP)

    def _is_token_request(self, request: httpx.Request) -> bool:
        return request.url.path == self._token_path

    def _sign(self, request: httpx.Request) -> None:
        """Add the access token (unless the request has its own ``Authorization``) and a
        proof; a DPoP token in the request, ours or not, is the one ``ath`` hashes."""
        authorization = request.headers.get("authorization")
        if authorization is None and self.access_token and not self._is_token_request(request):
            authorization = request.headers["Authorization"] = f"DPoP {self.access_token}"
        token = None
        if authorization is not None and authorization[:5].lower() == "dpop ":
            token = authorization[5:].strip()
        request.headers["DPoP"] = self.proof(request.method, str(request.url), access_token=token)

    def _learn(self, response: httpx.Response) -> bool:
        """Keep the nonce and any tokens; return whether the server asked for a nonce."""
        nonce = response.headers.get("dpop-nonce")
        if nonce:
            self._nonce = nonce
        asked = False
        if response.status_code == 401:
            asked = 'error="use_dpop_nonce"' in response.headers.get("www-authenticate", "")
        elif response.status_code in (200, 400) and self._is_token_request(response.request):
            body = _json(response)
            asked = body.get("error") == "use_dpop_nonce"
            access, refresh = body.get("access_token"), body.get("refresh_token")
            if response.status_code == 200 and isinstance(access, str):
                with self._lock:
                    self.access_token = access
                    self.refresh_token = refresh if isinstance(refresh, str) else None
        return asked and nonce is not None

    def _expired(self, response: httpx.Response) -> bool:
        challenge = response.headers.get("www-authenticate", "")
        return (
            response.status_code == 401
            and challenge.startswith("DPoP")
            and 'error="invalid_token"' in challenge
            and self.refresh_token is not None
            and not self._is_token_request(response.request)
        )

    def _refresh_request(self, request: httpx.Request) -> httpx.Request:
        url = request.url.copy_with(path=self._token_path, query=None)
        refresh = httpx.Request(
            "POST",
            url,
            data={"grant_type": "refresh_token", "refresh_token": self.refresh_token or ""},
        )
        self._sign(refresh)
        return refresh

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign, send, and retry once after a nonce request or with a renewed token."""
        self._sign(request)
        response = yield request
        if self._learn(response):
            self._sign(request)
            response = yield request
            self._learn(response)
        if self._expired(response):
            refreshed = yield self._refresh_request(request)
            if self._learn(refreshed):
                refreshed = yield self._refresh_request(request)
                self._learn(refreshed)
            if refreshed.status_code == 200:
                del request.headers["Authorization"]
                self._sign(request)
                response = yield request
                self._learn(response)


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
