"""The hard ceiling every security-log backend keeps on anonymous events (LOG-07).

:class:`~velvetrope.core.security_log.SecurityLog` writes the events that name neither
a user nor an address (a refused DPoP proof, a throttled sign-up) under
:data:`ANONYMOUS_SUBJECT`, and each node writes only a few of them a minute. On top of
that, every backend keeps at most :data:`ANONYMOUS_ROWS` rows of that subject, the
newest: adding a batch that has some trims the oldest past the ceiling, so however many
nodes write, the store's anonymous rows stay bounded. No other subject is trimmed.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ANONYMOUS_ROWS", "ANONYMOUS_SUBJECT"]

ANONYMOUS_SUBJECT: Final = "anonymous"
"""The subject of anonymous events and of the rows that count suppressed ones."""

ANONYMOUS_ROWS: Final = 10_000
"""The most rows of :data:`ANONYMOUS_SUBJECT` a store keeps (about 2 MB in Redis)."""
