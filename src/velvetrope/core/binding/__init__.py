"""Credentials bound to a key the client holds, so a copied credential is worthless alone.

* :mod:`~velvetrope.core.binding.dpop`: DPoP proofs (RFC 9449) for access and refresh
  tokens.
* :mod:`~velvetrope.core.binding.dbsc`: device-bound browser sessions (the W3C Device
  Bound Session Credentials draft, as Chromium implements it).

Both parse their proofs through :func:`velvetrope.core.tokens.codec.decode_proof`, and
keep what must be single-use (proof ids, challenges) in ``stores.one_time``, shared by
every node.
"""
