"""Redis stores for the fast-moving state: sessions, sign-in counters, refresh families
and the revocation feed (users and keys stay in SQL; see :class:`CompositeStores`),
plus push between nodes over pub/sub, which also keeps each node's session near-cache
fresh (:mod:`velvetrope.stores.cached_sessions`).

Key layout (``P`` is the prefix, ``velvetrope:`` by default; ``D`` a digest, ``U`` a
user id, ``F`` a family id, ``K`` a throttle key). The part in braces is the hash
tag that alone picks the Redis Cluster slot.

=====================  =======  ==============================================  ===================
key                    type     holds                                           TTL
=====================  =======  ==============================================  ===================
``P s:{D}``            hash     one session: ``h u c l e a ip ua em``,          until ``expires_at``
                                ``cl`` (claims) and ``dk`` (device key) if set
``P u:{U}:s``          set      digests of the user's sessions                  its longest session
``P s:exp``            zset     ``[D, U]`` scored by ``expires_at``             none; purge trims
``P t:{K}``            hash     failed sign-ins: count ``n``, first ``f``,      until the window
                                last ``l``                                      ends
``P t:last``           zset     throttle keys scored by their last failure      none; purge trims
``P f:{F}``            hash     one refresh family: ``u c x a g r l v ip ua``,  until ``expires_at``
                                ``k`` (key thumbprint) if set, and ``d:<D>`` =
                                generation per issued digest
``P r:{D}``            string   the family that issued refresh digest ``D``     the family's
``P u:{U}:f``          set      ids of the user's unrevoked families            its longest family
``P f:exp``            zset     ``[F, U]`` scored by ``expires_at``             none; purge trims
``P rv:{feed}:seq``    string   the last revocation sequence number             none
``P rv:{feed}:log``    stream   entry ``<seq>-0``: kind, value, at, expires_at  none; purge trims
``P rv:{feed}:exp``    zset     sequence numbers scored by ``expires_at``       none; purge trims
``P o:{K}``            hash     one single-use value ``v`` and its deadline     until the deadline
                                ``e`` (``K``: the key core chose)
``P notify``           channel  pub/sub (not a key): names of changed topics    none (no data)
=====================  =======  ==============================================  ===================

Instants are integer microseconds since the epoch (exact). Every TTL is a duration
taken from core's own timestamps (the deadline minus the write's instant), never
from the server's clock: a key ends when core's clock reaches its deadline (later
only by the write's latency, never earlier, whatever the server's clock says), and
touching a session never extends it. Core still checks every timestamp itself
(SESS-11): a TTL only deletes.

Atomic, one slot each: ``get`` (one ``HGETALL``), ``touch``, ``delete`` and the
consuming of the old session in ``rotate``, ``record_failure``, the throttle's
compare-and-count ``count_if`` and its ``release``, the refresh-rotation
compare-and-swap (generation, not revoked, digest never issued), ``revoke``, and the
feed's ``append`` and ``purge_expired`` (the only scripts with several keys, all
tagged ``{feed}``).

Spanning slots, as ordered steps that stay correct when interrupted:

* A record's own key is the truth; the indexes (``u:``, ``s:exp``, ``t:last``,
  ``f:exp``, ``r:``) may name entries that are gone, never miss a live one that was
  handed out. Records are written before their index entries and deleted before
  them, so a failure in between leaves a stale entry (skipped, then pruned by purge
  or "log out everywhere"), or an unindexed record whose secret core never handed
  out (the call raised) and which ends by its TTL.
* Session ``rotate``: delete the old session (one caller wins), write the new one,
  then swap the digests in the user's index only if the old one is still listed.
* ``delete_for_user`` / ``revoke_for_user``: take the user's index (all but
  ``keep``) in one step, then delete or revoke each; repeat until a pass finds
  nothing. A rotation racing it finds its old digest unlisted and loses, and an
  entry listed meanwhile is caught by the next pass.
* ``find``: the digest's lookup key names the family, whose hash must list the digest.

Operations notes: needs Redis 7.0 or later. Use ``maxmemory-policy noeviction`` (or a
``volatile-*`` policy, which never evicts the feed: its keys have no TTL). Without
persistence a restart ends every session and refresh family (users sign in again)
and forgets the revocation feed; its sequence numbers restart above the old ones,
so no node's cursor skips new entries.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from velvetrope.errors import ConfigurationError
from velvetrope.stores.cached_sessions import DEFAULT_TTL, CachedSessionStore
from velvetrope.stores.records import SessionCacheStatus
from velvetrope.stores.redis._base import Keys, guard
from velvetrope.stores.redis._client import open_client
from velvetrope.stores.redis.notifier import RedisNotifier
from velvetrope.stores.redis.scripts import Scripts
from velvetrope.stores.redis.sessions import RedisSessionStore, RedisThrottleStore
from velvetrope.stores.redis.tokens import (
    RedisOneTimeStore,
    RedisRefreshStore,
    RedisRevocationStore,
)

if TYPE_CHECKING:
    from velvetrope.stores.registry import StoreOptions

__all__ = ["RedisStores"]

MIN_VERSION = (7, 0)
"""``PEXPIRE ... NX | GT`` arrived in Redis 7.0."""


class RedisStores:
    """Sessions, throttle counters, refresh families and revocations in one Redis.

    One connection pool serves every store. Connecting and each command time out
    (two seconds by default), so an outage fails fast with
    :class:`~velvetrope.errors.StoreUnavailable`. A dropped connection is retried
    once at once, so the first command after the server comes back reconnects
    instead of failing; nothing needs restarting. (Should the connection drop after
    the server ran a command, the retry runs it again: most writes are idempotent; a
    repeated rotation reports a loss, a repeated failure or revocation is recorded
    twice. Each fails safe.)

    Args:
        url: ``redis://[user:password@]host:port/db``, ``rediss://...`` (TLS),
            ``unix:///path/to.sock``, or a Redis Cluster:
            ``redis+cluster://[user:password@]host:port[,host:port...]``
            (``rediss+cluster://`` with TLS).
        prefix: Starts every key, so several deployments can share one Redis.
        connect_timeout: How long to wait for a connection.
        timeout: How long to wait for each reply.
        session_cache_ttl: The staleness bound of this node's session near-cache
            (see :mod:`velvetrope.stores.cached_sessions`); zero turns it off.

    Raises:
        ConfigurationError: The URL cannot be parsed, or the prefix has a brace.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "velvetrope:",
        connect_timeout: timedelta = timedelta(seconds=2),
        timeout: timedelta = timedelta(seconds=2),
        session_cache_ttl: timedelta = DEFAULT_TTL,
    ) -> None:
        if "{" in prefix or "}" in prefix:
            raise ConfigurationError("the Redis key prefix cannot contain { or }")
        self._client = open_client(url, connect_timeout=connect_timeout, timeout=timeout)
        self.prefix = prefix
        keys, scripts = Keys(prefix), Scripts.register(self._client)
        self._connect_timeout = connect_timeout
        self._notifier = RedisNotifier(self._client, prefix + "notify")
        self._sessions = CachedSessionStore(
            RedisSessionStore(self._client, keys, scripts),
            self._notifier,
            ttl=session_cache_ttl,
        )
        self._throttle = RedisThrottleStore(self._client, keys, scripts)
        self._refresh = RedisRefreshStore(self._client, keys, scripts)
        self._revocations = RedisRevocationStore(self._client, keys, scripts)
        self._one_time = RedisOneTimeStore(self._client, keys, scripts)

    @classmethod
    def from_url(cls, url: str, options: StoreOptions) -> RedisStores:
        """``redis://host:port/db``, ``rediss://...`` (TLS), ``unix:///path`` or
        ``redis+cluster://host:port[,host:port...]``.

        Raises:
            ConfigurationError: The URL cannot be parsed, or the prefix has a brace.
        """
        return cls(url, prefix=options.redis_prefix, session_cache_ttl=options.session_cache_ttl)

    def session_cache_status(self) -> SessionCacheStatus:
        return self._sessions.status()

    @property
    def sessions(self) -> CachedSessionStore:
        """Sessions in Redis behind this node's near-cache."""
        return self._sessions

    @property
    def throttle(self) -> RedisThrottleStore:
        return self._throttle

    @property
    def refresh(self) -> RedisRefreshStore:
        return self._refresh

    @property
    def revocations(self) -> RedisRevocationStore:
        return self._revocations

    @property
    def one_time(self) -> RedisOneTimeStore:
        return self._one_time

    @property
    def notifier(self) -> RedisNotifier:
        return self._notifier

    async def start(self) -> None:
        """Connect, check the server is new enough, and start the session cache's
        listener (waiting for its subscription at most the connect timeout).

        Raises:
            StoreUnavailable: Redis cannot be reached.
            ConfigurationError: The server is older than Redis 7.0.
        """
        with guard():
            info = await self._client.info("server")
        version = str(info.get("redis_version", "0"))
        if tuple(int(part) for part in version.split(".")[:2]) < MIN_VERSION:
            raise ConfigurationError(
                f"velvetrope needs Redis 7.0 or later; the server is {version}"
            )
        await self._sessions.start(wait=self._connect_timeout)

    async def ping(self) -> None:
        """Check Redis answers.

        Raises:
            StoreUnavailable: It does not.
        """
        with guard():
            await self._client.ping()

    async def aclose(self) -> None:
        """Stop the session cache's listener and close every pooled connection."""
        try:
            await self._sessions.aclose()
        finally:
            await self._client.aclose()
