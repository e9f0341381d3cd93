"""The Lua scripts of the Redis stores: each an atomic step on the keys of one hash slot.

Every script touches only the keys passed in ``KEYS``, and those keys share one
hash tag, so each runs on Redis Cluster as it does on one server. Timestamps
travel as decimal strings of integer microseconds and are only compared
(``tonumber`` is exact below 2**53, past the year 2255), never formatted by Lua,
whose number-to-string conversion would round them.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.commands.core import AsyncScript

from velvetrope.stores.redis._client import Client

__all__ = ["Scripts"]

# touch and bind: set one field of a session that still exists; never re-create it
# (SESS-09). KEYS: session. ARGV: field, value. Returns 1 if written, 0 if it is gone.
_SET_IF_PRESENT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# Delete a session if it exists (and, given ARGV[1], only if that user owns it).
# KEYS: session. ARGV: [user_id]. Returns the owner's id if deleted, else nil.
_DELETE_SESSION = """
local owner = redis.call('HGET', KEYS[1], 'u')
if not owner or (ARGV[1] and owner ~= ARGV[1]) then return false end
redis.call('DEL', KEYS[1])
return owner
"""

# Delete a session whose absolute expiry has passed.
# KEYS: session. ARGV: now. Returns 1 deleted, 0 already gone, -1 still alive.
_PURGE_SESSION = """
local expires = redis.call('HGET', KEYS[1], 'e')
if not expires then return 0 end
if tonumber(expires) > tonumber(ARGV[1]) then return -1 end
redis.call('DEL', KEYS[1])
return 1
"""

# Remove every member but ARGV[1] from a per-user index and return them: the first
# step of "log out everywhere", which unlists before it deletes.
# KEYS: index set. ARGV: [kept member]. Returns the removed members.
_TAKE_ALL = """
local taken = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if member ~= ARGV[1] then
    redis.call('SREM', KEYS[1], member)
    taken[#taken + 1] = member
  end
end
return taken
"""

# Replace a rotated session's digest in its owner's index, only if the old one is
# still listed: if "log out everywhere" unlisted it meanwhile, the rotation loses.
# KEYS: index set. ARGV: old digest, new digest, minimum TTL (ms). Returns 1 or 0.
_SWAP_MEMBER = """
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SADD', KEYS[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
"""

# Count one failed sign-in; a run whose first failure is before the window restarts.
# With a limit (ARGV[3]), count only while fewer than that are counted in the run:
# the compare-and-count of login throttling. The key lives exactly as long as core
# would still count the run (first_at + window).
# KEYS: counter. ARGV: now, window_start[, limit]. Returns {count, first_at}, or nil
# (nothing written) at the limit.
_RECORD_FAILURE = """
local run = redis.call('HMGET', KEYS[1], 'n', 'f')
local count, first = 1, ARGV[1]
if run[1] and tonumber(run[2]) >= tonumber(ARGV[2]) then
  count, first = tonumber(run[1]) + 1, run[2]
end
if ARGV[3] and count > tonumber(ARGV[3]) then return false end
redis.call('HSET', KEYS[1], 'n', count, 'f', first, 'l', ARGV[1])
local ttl = math.ceil((tonumber(first) - tonumber(ARGV[2])) / 1000)
redis.call('PEXPIRE', KEYS[1], math.max(ttl, 1))
return {count, first}
"""

# Take back one count of a run that still began at ARGV[1]; never below zero.
# KEYS: counter. ARGV: first_at. Returns 1 taken back, 0 not.
_RELEASE = """
local run = redis.call('HMGET', KEYS[1], 'n', 'f')
if not run[1] or run[2] ~= ARGV[1] or tonumber(run[1]) <= 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'n', -1)
return 1
"""

# Delete a failure counter whose last failure is before ARGV[1].
# KEYS: counter. ARGV: cutoff. Returns 1 deleted, 0 already gone, -1 still recent.
_PURGE_COUNTER = """
local last = redis.call('HGET', KEYS[1], 'l')
if not last then return 0 end
if tonumber(last) >= tonumber(ARGV[1]) then return -1 end
redis.call('DEL', KEYS[1])
return 1
"""

# Refresh rotation, the compare-and-swap of RT-05: advance the family only if it
# exists, is unrevoked, is still at the expected generation and has never issued
# this digest; record the digest. With a DPoP key's thumbprint (ARGV[5], '' for none)
# bind an unbound family to it in the same step, and refuse one bound to another key
# (DPOP-11). Returns the family's remaining TTL (ms), for the digest's lookup key, or
# nil if the rotation lost.
# KEYS: family. ARGV: from_generation, to_generation, digest, now, jkt.
_ROTATE_FAMILY = """
local field = 'd:' .. ARGV[3]
local f = redis.call('HMGET', KEYS[1], 'g', 'v', field, 'k')
if not f[1] or f[2] or f[3] or tonumber(f[1]) ~= tonumber(ARGV[1]) then return false end
if ARGV[5] ~= '' and f[4] and f[4] ~= ARGV[5] then return false end
redis.call('HSET', KEYS[1], 'g', ARGV[2], 'r', ARGV[4], 'l', ARGV[4], field, ARGV[2])
if ARGV[5] ~= '' and not f[4] then redis.call('HSET', KEYS[1], 'k', ARGV[5]) end
return redis.call('PTTL', KEYS[1])
"""

# Revoke a live family. KEYS: family. ARGV: now, then the record's field names.
# Returns the record as it was before (values of those fields), or nil if it was
# missing or already revoked.
_REVOKE_FAMILY = """
local before = redis.call('HMGET', KEYS[1], unpack(ARGV, 2))
if redis.call('HEXISTS', KEYS[1], 'u') == 0 or redis.call('HEXISTS', KEYS[1], 'v') == 1 then
  return false
end
redis.call('HSET', KEYS[1], 'v', ARGV[1])
return before
"""

# Delete a family past its absolute expiry. KEYS: family. ARGV: now.
# Returns {1, digest...} if deleted (the digests it issued), {0} if already gone,
# {-1} if still alive.
_PURGE_FAMILY = """
local expires = redis.call('HGET', KEYS[1], 'x')
if not expires then return {0} end
if tonumber(expires) > tonumber(ARGV[1]) then return {-1} end
local out = {1}
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 2) == 'd:' then out[#out + 1] = string.sub(field, 3) end
end
redis.call('DEL', KEYS[1])
return out
"""

# Append to the revocation feed. The counter starts at the server's clock in
# microseconds, so a Redis that lost its data (restart without persistence) still
# hands out numbers above every one it gave before, and no node's cursor skips them.
# KEYS: counter, stream, expiry index. ARGV: kind, value, at, expires_at.
# Returns the sequence number as a string.
_APPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  local now = redis.call('TIME')
  redis.call('SET', KEYS[1], now[1] .. string.format('%06d', tonumber(now[2])))
end
redis.call('INCR', KEYS[1])
local seq = redis.call('GET', KEYS[1])
redis.call('XADD', KEYS[2], seq .. '-0', 'k', ARGV[1], 'v', ARGV[2], 'a', ARGV[3], 'e', ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[4], seq)
return seq
"""

# Forget up to ARGV[2] feed entries whose expires_at is at or before ARGV[1].
# KEYS: stream, expiry index. Returns {removed from the index, deleted from the feed}.
_PURGE_FEED = """
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local deleted = 0
for _, seq in ipairs(due) do
  deleted = deleted + redis.call('XDEL', KEYS[1], seq .. '-0')
  redis.call('ZREM', KEYS[2], seq)
end
return {#due, deleted}
"""


# Store a single-use value unless a live one is there (its deadline, ARGV[3], is later
# than now, ARGV[1]). KEYS: the entry. ARGV: now, value, expires_at, TTL in ms.
# Returns 1 if stored, 0 if a live entry was kept.
_PUT_ONCE = """
local deadline = redis.call('HGET', KEYS[1], 'e')
if deadline and tonumber(deadline) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'e', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""

# Take a single-use value: delete the entry, return its value if it was still live.
# KEYS: the entry. ARGV: now. Returns the value or nil.
_TAKE_ONCE = """
local entry = redis.call('HMGET', KEYS[1], 'v', 'e')
if not entry[1] then return false end
redis.call('DEL', KEYS[1])
if tonumber(entry[2]) <= tonumber(ARGV[1]) then return false end
return entry[1]
"""


@dataclass(frozen=True, slots=True)
class Scripts:
    """Every script, registered with one client (loaded on first use, and again after
    a server restart emptied the script cache)."""

    set_if_present: AsyncScript
    delete_session: AsyncScript
    purge_session: AsyncScript
    take_all: AsyncScript
    swap_member: AsyncScript
    record_failure: AsyncScript
    release: AsyncScript
    purge_counter: AsyncScript
    rotate_family: AsyncScript
    revoke_family: AsyncScript
    purge_family: AsyncScript
    append: AsyncScript
    purge_feed: AsyncScript
    put_once: AsyncScript
    take_once: AsyncScript

    @classmethod
    def register(cls, client: Client) -> Scripts:
        """Register every script with ``client``; nothing is sent to the server yet."""
        return cls(
            set_if_present=client.register_script(_SET_IF_PRESENT),
            delete_session=client.register_script(_DELETE_SESSION),
            purge_session=client.register_script(_PURGE_SESSION),
            take_all=client.register_script(_TAKE_ALL),
            swap_member=client.register_script(_SWAP_MEMBER),
            record_failure=client.register_script(_RECORD_FAILURE),
            release=client.register_script(_RELEASE),
            purge_counter=client.register_script(_PURGE_COUNTER),
            rotate_family=client.register_script(_ROTATE_FAMILY),
            revoke_family=client.register_script(_REVOKE_FAMILY),
            purge_family=client.register_script(_PURGE_FAMILY),
            append=client.register_script(_APPEND),
            purge_feed=client.register_script(_PURGE_FEED),
            put_once=client.register_script(_PUT_ONCE),
            take_once=client.register_script(_TAKE_ONCE),
        )
