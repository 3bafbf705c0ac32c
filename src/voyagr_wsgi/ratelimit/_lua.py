"""The GCRA Lua script RedisStore runs (kept beside the code, no package data needed)."""

GCRA_LUA = r"""
-- GCRA (generic cell rate algorithm), one Redis string per client key: its TAT in
-- microseconds on the Redis server's clock. Used by voyagr_wsgi.ratelimit.RedisStore.
--
-- KEYS[1]  the client's key, e.g. "vy:rl:{203.0.113.7}"
-- ARGV[1]  T     emission interval, integer microseconds > 0
-- ARGV[2]  tau   burst tolerance, integer microseconds (T * burst)
-- ARGV[3]  cost  units to consume (integer >= 0; 0 peeks and never writes)
--
-- Returns {allowed (0|1), remaining, retry_after_us, offset_us} where offset_us is
-- max(TAT - now, 0) after the decision; every value an exact integer (Redis truncates Lua
-- numbers on reply). Redis >= 5 replicates scripts by effects, so TIME before a write is fine.

local T    = tonumber(ARGV[1])
local tau  = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])   -- ~1.8e15 < 2^53: exact

local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end                          -- idle: the bucket is full

local new_tat = tat + T * cost
local allow_at = new_tat - tau

if allow_at > now then                                   -- denied: write nothing
  local remaining = math.floor((tau - (tat - now)) / T)
  if remaining < 0 then remaining = 0 end
  return {0, remaining, allow_at - now, tat - now}
end

if cost > 0 then
  -- keep the state only until the bucket would be full again
  local ttl_ms = math.ceil((new_tat - now) / 1000)
  if ttl_ms < 1 then ttl_ms = 1 end
  redis.call('SET', KEYS[1], string.format('%d', new_tat))
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
end

return {1, math.floor((tau - (new_tat - now)) / T), 0, new_tat - now}
"""

GCRA_MANY_LUA = r"""
-- GCRA for several policies of one client at once (stacked limits, e.g. 10/1s and 1000/1h):
-- allowed only if every policy allows, and then every TAT is written; a denial writes
-- nothing. Used by voyagr_wsgi.ratelimit.RedisStore.update_many.
--
-- KEYS[i]        one key per policy, all with the client's hash tag {client} (one slot)
-- ARGV[1]        cost, integer >= 0 (0 peeks)
-- ARGV[2i], [2i+1]  T and tau of KEYS[i], integer microseconds
--
-- Returns {allowed (0|1), offset_us per key}: max(TAT - now, 0) after the decision.

local cost = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local bases, news, allowed = {}, {}, 1

for i = 1, #KEYS do
  local T, tau = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  bases[i], news[i] = tat, tat + T * cost
  if news[i] - tau > now then allowed = 0 end
end

local out = {allowed}
for i = 1, #KEYS do
  if allowed == 1 and cost > 0 then
    local ttl_ms = math.ceil((news[i] - now) / 1000)
    if ttl_ms < 1 then ttl_ms = 1 end
    redis.call('SET', KEYS[i], string.format('%d', news[i]))
    redis.call('PEXPIRE', KEYS[i], ttl_ms)
    out[i + 1] = news[i] - now
  else
    out[i + 1] = bases[i] - now
  end
end
return out
"""
