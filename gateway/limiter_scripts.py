"""The Lua scripts of the Redis limiter (:mod:`gateway.redis_limiter`), each run atomically on
Redis's own clock: the token bucket's (``RESERVE``, ``STANDING``, ``RECONCILE``), the slots in
flight (``RELEASE``, and within the reservations), and the sliding minute's (``WINDOW_*``: what
:class:`gateway.limit_window.Windows` does in one process)."""

from __future__ import annotations

__all__ = [
    "RECONCILE",
    "RELEASE",
    "RESERVE",
    "STANDING",
    "WINDOW_RESERVE",
    "WINDOW_SETTLE",
    "WINDOW_STANDING",
]

# The reserving and standing scripts start here: the server's clock (TIME, no client skew) and
# the rates (ARGV[1], ARGV[2]); the bucket's then read what its hash (KEYS[1]) holds refilled to
# now (r, tk).
_CLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rpm = tonumber(ARGV[1]); local tpm = tonumber(ARGV[2])
"""
_REFILL = """
local b = redis.call('HMGET', KEYS[1], 'r', 't', 'ts')
local r = tonumber(b[1]) or rpm; local tk = tonumber(b[2]) or tpm; local ts = tonumber(b[3]) or now
local el = math.max(0, now - ts)
r = math.min(rpm, r + el * rpm / 60); tk = math.min(tpm, tk + el * tpm / 60)
"""

# Both reserving scripts: KEYS[2] = the key's slots in flight (a sorted set: slot -> lease end);
# ARGV[3..6] = cost_tokens, max_parallel (0: none), slot, lease_s. Refused at once, {3, '1'},
# when every slot is taken (leases over are dropped first) ...
_SLOT_FREE = """
local cost = tonumber(ARGV[3])
local par = tonumber(ARGV[4] or '0')
if par > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= par then return {3, '1'} end
end
"""
# ... and the slot taken, with its lease, once the request is.
_SLOT_TAKEN = """
if par > 0 then
  local lease = tonumber(ARGV[6])
  redis.call('ZADD', KEYS[2], now + lease, ARGV[5])
  redis.call('EXPIRE', KEYS[2], math.ceil(lease) + 1)
end
"""

# KEYS[1] = bucket hash, KEYS[2] = the key's slots in flight. ARGV: rpm, tpm, cost_tokens,
# max_parallel, slot, lease_s.
RESERVE = (
    _CLOCK
    + _SLOT_FREE
    + _REFILL
    + """
if rpm > 0 and r < 1 then return {0, tostring((1 - r) * 60 / rpm)} end
if tpm > 0 and tk < cost then return {1, tostring((cost - tk) * 60 / tpm)} end
if rpm > 0 then r = r - 1 end
tk = tk - cost
redis.call('HSET', KEYS[1], 'r', r, 't', tk, 'ts', now)
redis.call('EXPIRE', KEYS[1], 120)
"""
    + _SLOT_TAKEN
    + """
return {2, '0', tostring(r), tostring(tk)}
"""
)

# KEYS as RESERVE. ARGV: rpm, tpm. What a reservation would find, refilled to now; nothing is
# written. Returns requests left, tokens left, slots in flight (leases not yet over).
STANDING = (
    _CLOCK
    + _REFILL
    + """
return {tostring(r), tostring(tk), redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')}
"""
)

# KEYS[1] = the key's slots in flight. ARGV: the slot given back.
RELEASE = """
return redis.call('ZREM', KEYS[1], ARGV[1])
"""

# KEYS[1] = bucket hash. ARGV: tpm, refund (may be negative: a charge), rpm, requests given
# back (0 or 1: a request refused after it was taken). A bucket that has expired (full again)
# is left alone.
RECONCILE = """
local tpm = tonumber(ARGV[1]); local refund = tonumber(ARGV[2])
local rpm = tonumber(ARGV[3] or '0'); local back = tonumber(ARGV[4] or '0')
local b = redis.call('HMGET', KEYS[1], 'r', 't')
local r = tonumber(b[1]); local tk = tonumber(b[2])
if tk == nil then return 0 end
if tpm > 0 then redis.call('HSET', KEYS[1], 't', math.min(tpm, tk + refund)) end
if back > 0 and rpm > 0 and r ~= nil then
  redis.call('HSET', KEYS[1], 'r', math.min(rpm, r + back))
end
return 1
"""


# The sliding minute. KEYS[1] = the key's log (a sorted set: entry -> when taken), KEYS[2] = the
# key's slots in flight, KEYS[3] = the log's hash ('#r', '#t': requests and tokens the log holds;
# entry -> 'requests,tokens'). Here: the log trimmed to the last minute (written back only where
# WRITE is replaced by true), the sums in ur, ut.
_TRIM = """
local cut = now - 60
local ur = tonumber(redis.call('HGET', KEYS[3], '#r')) or 0
local ut = tonumber(redis.call('HGET', KEYS[3], '#t')) or 0
-- at most 1,024 a call: a minute of very many requests leaves over several calls, the sums
-- meanwhile counting the rest (stricter, never looser)
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cut, 'LIMIT', 0, 1024)
for i = 1, #old do
  local v = redis.call('HGET', KEYS[3], old[i])
  if v then
    local a, b = string.match(v, '^(%d+),(%d+)$')
    ur = ur - tonumber(a); ut = ut - tonumber(b)
    if WRITE then redis.call('HDEL', KEYS[3], old[i]) end
  end
end
if WRITE and #old > 0 then
  redis.call('ZREM', KEYS[1], unpack(old))
  redis.call('HSET', KEYS[3], '#r', ur, '#t', ut)
end
"""

# ARGV: rpm, tpm, cost_tokens, max_parallel (0: none), slot, lease_s, entry. As RESERVE: {2, '0',
# requests left, tokens left} taken, {0 | 1, seconds until enough comes back} refused for
# requests | tokens, {3, '1'} no slot in flight.
WINDOW_RESERVE = (
    _CLOCK
    + _SLOT_FREE
    + _TRIM.replace("WRITE", "true")
    + """
if rpm > 0 and ur + 1 > rpm then
  -- the oldest entry that holds a request (of the oldest 64: one given back holds none)
  local seen = redis.call('ZRANGE', KEYS[1], 0, 63, 'WITHSCORES')
  local at = now
  for i = 1, #seen, 2 do
    local v = redis.call('HGET', KEYS[3], seen[i])
    if v and string.sub(v, 1, 2) == '1,' then at = tonumber(seen[i + 1]); break end
  end
  return {0, tostring(at + 60 - now)}
end
if tpm > 0 and ut + cost > tpm then
  local need = ut + cost - tpm
  local at = now
  -- the oldest 64 at most: a refusal's cost bounded however long the minute's log (the wait
  -- then a lower bound: a retry is told again)
  local seen = redis.call('ZRANGE', KEYS[1], 0, 63, 'WITHSCORES')
  for i = 1, #seen, 2 do
    local v = redis.call('HGET', KEYS[3], seen[i])
    need = need - (v and tonumber(string.match(v, ',(%d+)$')) or 0)
    at = tonumber(seen[i + 1])
    if need <= 0 then break end
  end
  return {1, tostring(at + 60 - now)}
end
redis.call('ZADD', KEYS[1], now, ARGV[7])
redis.call('HSET', KEYS[3], ARGV[7], string.format('1,%d', cost), '#r', ur + 1, '#t', ut + cost)
redis.call('EXPIRE', KEYS[1], 61)
redis.call('EXPIRE', KEYS[3], 61)
"""
    + _SLOT_TAKEN
    + """
return {2, '0', tostring(rpm - ur - 1), tostring(tpm - ut - cost)}
"""
)

# KEYS as WINDOW_RESERVE. ARGV: rpm, tpm. Requests left, tokens left and slots in flight now;
# nothing is written.
WINDOW_STANDING = (
    _CLOCK
    + _TRIM.replace("WRITE", "false")
    + """
return {tostring(rpm - ur), tostring(tpm - ut), redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')}
"""
)

# KEYS[1] = the key's log hash (KEYS[3] above). ARGV: entry, refund (the tokens reserved less
# those used; negative: a charge), the request given back (0 or 1). An entry that has left the
# minute is left alone.
WINDOW_SETTLE = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local a, b = string.match(v, '^(%d+),(%d+)$')
a = tonumber(a); b = tonumber(b)
local nb = math.max(0, b - tonumber(ARGV[2]))
local na = a
if tonumber(ARGV[3]) > 0 then na = 0 end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d,%d', na, nb))
redis.call('HINCRBY', KEYS[1], '#r', na - a)
redis.call('HINCRBY', KEYS[1], '#t', nb - b)
return 1
"""
