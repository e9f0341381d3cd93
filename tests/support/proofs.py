"""Proofs of possession made by hand: good ones, and every way to get one wrong.

A test key signs with joserfc through the project's codec (what a real client does)
or, for the attacks (``alg: none``, HS256 with a key the server never saw, a private
key in the header), the JWS is assembled here byte by byte.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from joserfc import jws as joserfc_jws

from velvetrope.core.tokens import codec
from velvetrope.core.tokens.codec import Jwk, ProofAlgorithm

__all__ = ["ProofKey", "b64", "forge", "jws"]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def jws(header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes = b"") -> str:
    """A compact JWS with exactly this header and payload, and ``signature`` as given."""
    parts = [b64(json.dumps(p, separators=(",", ":")).encode()) for p in (header, claims)]
    return ".".join([*parts, b64(signature)])


def forge(header: Mapping[str, Any], claims: Mapping[str, Any], secret: bytes) -> str:
    """An HS256 JWS under ``secret`` (a symmetric "proof": never acceptable)."""
    parts = [b64(json.dumps(p, separators=(",", ":")).encode()) for p in (header, claims)]
    signing_input = ".".join(parts).encode()
    return ".".join([*parts, b64(hmac.new(secret, signing_input, hashlib.sha256).digest())])


class ProofKey:
    """A client's key pair and the proofs it signs."""

    def __init__(self, alg: ProofAlgorithm = "ES256") -> None:
        self.alg: ProofAlgorithm = alg
        self.key: Jwk = codec.generate_proof_key(alg)
        self.jkt = codec.thumbprint(self.key)

    @property
    def public(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=False))

    @property
    def private(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=True))

    def sign(self, claims: Mapping[str, Any], *, typ: str = "dpop+jwt") -> str:
        """A proof with the public key in its header (what the server first sees)."""
        return codec.sign_proof(claims, key=self.key, alg=self.alg, typ=typ)

    def sign_bare(self, claims: Mapping[str, Any], *, typ: str = "dbsc+jwt") -> str:
        """A proof whose header names no key (``{alg, typ}``): a DBSC refresh's."""
        payload = json.dumps(claims, separators=(",", ":")).encode()
        header = {"alg": self.alg, "typ": typ}
        return joserfc_jws.serialize_compact(header, payload, self.key, algorithms=[self.alg])

    def dpop(
        self,
        htm: str,
        htu: str,
        *,
        access_token: str | None = None,
        iat: float | None = None,
        nonce: str | None = None,
        **extra: Any,
    ) -> str:
        """A DPoP proof for ``htm`` and ``htu`` (now, a fresh ``jti``)."""
        claims: dict[str, Any] = {
            "htm": htm,
            "htu": htu,
            "iat": int(time.time() if iat is None else iat),
            "jti": b64(secrets.token_bytes(16)),
            **extra,
        }
        if access_token is not None:
            claims["ath"] = b64(hashlib.sha256(access_token.encode()).digest())
        if nonce is not None:
            claims["nonce"] = nonce
        return self.sign(claims)
