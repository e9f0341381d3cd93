"""The token side of the auth service: refresh families, revocation and keys.

A mixin of :class:`~velvetrope.core.service.AuthService` (one concern per module: the
service wires the parts, this is what it offers token clients and operators).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from velvetrope.core.binding.dpop import DPoPProofs
from velvetrope.core.hooks import AccountEvent, Hooks
from velvetrope.core.tokens.keys import SigningKey
from velvetrope.core.tokens.service import TokenPair, TokenService
from velvetrope.errors import DPoPProofRefused, RefreshTokenReused
from velvetrope.stores.protocols import Stores
from velvetrope.stores.records import RefreshFamilyRecord

__all__ = ["TokenOperations"]


class TokenOperations:
    """Refresh grants, revocation (RFC 7009), JWKS and key rotation."""

    stores: Stores
    tokens: TokenService
    hooks: Hooks
    dpop: DPoPProofs

    async def token_claims(self, user_id: str) -> dict[str, Any]:
        """What an access token of ``user_id`` carries besides its registered claims:
        ``email`` and the application claims (``{}`` for an account that is gone).

        Raises:
            InvalidClaims: The claims hook failed, or its claims break a rule.
        """
        user = await self.stores.users.get(user_id)
        if user is None:
            return {}
        return {**await self.hooks.claims_for(user), "email": user.email}

    async def family(self, family_id: str) -> RefreshFamilyRecord | None:
        """The refresh family with this id, revoked or not."""
        return await self.tokens.refresh.get(family_id)

    async def live_family(self, refresh_token: str) -> str | None:
        """The id of the family ``refresh_token`` belongs to, if it is still live."""
        family = await self.tokens.refresh.find_family(refresh_token)
        if family is None or family.revoked_at is not None:
            return None
        return family.id

    async def refresh_grant(self, refresh_token: str, *, jkt: str | None = None) -> TokenPair:
        """Rotate a refresh token into a new pair; see ``TokenService.refresh_grant``.

        With ``jkt`` (the key of a checked DPoP proof) an unbound family is bound to that
        key as it rotates; under ``VELVETROPE_DPOP=require`` a refresh without one is
        refused, bound family or not (DPOP-11, RFC 9449 section 5).

        Raises:
            InvalidGrant: Unknown, expired, revoked or reused (the family is revoked).
            DPoPProofRefused: The family is bound to a DPoP key other than ``jkt``, or
                DPoP is required and ``jkt`` is ``None``.
        """
        if jkt is None and self.dpop.policy.mode == "require":
            raise DPoPProofRefused.for_reason("proof required")
        try:
            return await self.tokens.refresh_grant(refresh_token, jkt=jkt)
        except RefreshTokenReused as reused:
            family = await self.tokens.refresh.get(reused.family_id)
            user_id = "" if family is None else family.user_id
            event = AccountEvent("refresh_reused", user_id, device=reused.family_id)
            await self.hooks.emit(event)
            raise

    async def revoke_family(self, family_id: str) -> bool:
        """End a token device: its refresh tokens and every access token it holds."""
        return await self.tokens.revoke_family(family_id)

    async def revoke_token(self, token: str) -> None:
        """RFC 7009: revoke a refresh token's family or one access token (unknown: no-op)."""
        await self.tokens.revoke_token(token)

    def jwks(self) -> dict[str, Any]:
        """The public keys that verify access tokens (RFC 7517 JWK Set), as this node
        knows them."""
        return self.tokens.keys.jwks()

    async def published_jwks(self) -> dict[str, Any]:
        """The public keys that verify access tokens, as the store holds them (what
        ``/.well-known/jwks.json`` serves: every node's keys, whichever node answers)."""
        return await self.tokens.keys.published()

    def signing_keys(self) -> Sequence[SigningKey]:
        """The keys that still verify access tokens, the signing one first."""
        return self.tokens.keys.keys()

    async def rotate_keys(self) -> SigningKey:
        """Make a new signing key now; the previous one verifies until its tokens expire."""
        return await self.tokens.rotate_keys()
