"""What a request presents: a credential, and what binds it to that request or device.

A transport reads a :class:`Presented` from a request; the strategy verifies it. Most
credentials are a single string (a session ID, a bearer token, an API key), so only
``value`` is set. Bound credentials carry their proof alongside:

* a DPoP request (RFC 9449): ``value`` is the access token, ``proof`` the ``DPoP``
  header's proof JWT, ``htm`` and ``htu`` the method and URL it must be signed for
  (the URL on the server's configured public origin, never the ``Host`` header);
* a device-bound session (DBSC): ``value`` is the session ID, ``proof`` the
  short-lived bound cookie that the browser renews with its device key.

Migrating a way in of your own written against the single-string seam: its transport
returns ``Presented(value)`` where it returned ``value``, and its strategy reads
``credential.value`` where it read ``credential``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Presented"]


@dataclass(frozen=True, slots=True)
class Presented:
    """A credential as one request presents it.

    Attributes:
        value: The credential itself (never logged, never in ``repr``).
        proof: What proves the sender holds the key the credential is bound to: a DPoP
            proof, or a device-bound session's bound cookie; ``None`` for a plain one.
        htm: The request's method (what a DPoP proof's ``htm`` must say).
        htu: The request's URL on the public origin, without query or fragment (what a
            DPoP proof's ``htu`` must say); empty when the transport has no use for it.
    """

    value: str = field(repr=False)
    proof: str | None = field(default=None, repr=False)
    htm: str = ""
    htu: str = ""
