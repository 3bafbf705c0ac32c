"""The GCRA Lua script RedisStore runs (kept beside the code, no package data needed)."""

GCRA_LUA = r"""
-- GCRA (generic cell rate algorithm) on Redis's clock, one Redis string per key: its TAT in
-- integer microseconds. One key for a single policy; several for the policies of one client
-- at once (stacked limits, e.g. 10/1s and 1000/1h): allowed only if every policy allows,
-- and then every TAT is written; a denial writes nothing. Used by
-- voyagr_wsgi.ratelimit.RedisStore (update: one key; update_many: several).
-- Redis >= 5 replicates scripts by effects, so TIME before a write is fine; every value
-- returned is an exact integer (Redis truncates Lua numbers on reply).
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
