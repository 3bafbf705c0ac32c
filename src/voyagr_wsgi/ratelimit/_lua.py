"""The GCRA Lua script RedisStore runs (kept beside the code, no package data needed)."""

GCRA_LUA = r"""
-- GCRA (generic cell rate algorithm) on Redis's clock, one Redis string per key: its TAT in
-- integer microseconds, with a reservation. One key for a single policy; several for the
-- policies of one client at once (stacked limits, e.g. 10/1s and 1000/1h): allowed only if
-- every policy allows, and then every TAT is written; a denial writes nothing. Used by
-- voyagr_wsgi.ratelimit.RedisStore (update: one key; update_many: several).
-- Redis >= 5 replicates scripts by effects, so TIME before a write is fine; every value
-- returned is an exact integer (Redis truncates Lua numbers on reply).
--
-- KEYS[i]        one key per policy, all with the client's hash tag {client} (one slot)
-- ARGV[1]        cost, integer >= 0 (0 peeks: nothing is written)
-- ARGV[2]        want, integer >= cost: the most units to debit (the reservation)
-- ARGV[2i+1], [2i+2]  T and tau of KEYS[i], integer microseconds
--
-- Grants g = the largest m <= want that every key allows now (TAT + m*T - tau <= now), the
-- same g on every key; allowed iff g >= cost. want = cost is the plain GCRA decision.
-- Returns {allowed (0|1), granted units (0 when denied or peeking), offset_us per key}:
-- max(TAT - now, 0) after the decision.

local cost, want = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local bases, grant = {}, want

for i = 1, #KEYS do
  local T, tau = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  bases[i] = tat
  -- the most units this key allows: floor((now + tau - tat) / T), corrected by one where the
  -- rounded quotient reached the next integer (the products are exact integers)
  local room = math.floor((now + tau - tat) / T)
  if tat + room * T - tau > now then room = room - 1 end
  if room < grant then grant = room end
end

local allowed = 0
if grant >= cost then allowed = 1 end
if allowed == 0 or cost == 0 then grant = 0 end

local out = {allowed, grant}
for i = 1, #KEYS do
  if grant > 0 then
    local T = tonumber(ARGV[2 * i + 1])
    local new = bases[i] + T * grant
    local ttl_ms = math.ceil((new - now) / 1000)
    if ttl_ms < 1 then ttl_ms = 1 end
    redis.call('SET', KEYS[i], string.format('%d', new))
    redis.call('PEXPIRE', KEYS[i], ttl_ms)
    out[i + 2] = new - now
  else
    out[i + 2] = bases[i] - now
  end
end
return out
"""
