-- set_rate_limit.lua: set or remove the rate limit of a type or a key
-- (shared/rates.lua).
-- KEYS: the queue's keys up to scheduled (shared/queue.lua).
-- ARGV[1] group   ARGV[2] the rates-hash field: 'type:<T>', 'key:<K>', or
-- 'key' (every key's limit, where a key has none of its own)
-- ARGV[3] '<n> <period ms> <burst>', or '' to remove the limit
-- The gate's state (its theoretical arrival time) is kept while it has a
-- limit, rescaled to a changed one (the starts it owes are owed under the
-- new limit, so a change gives no fresh burst), and dropped with it.
-- The jobs parked at the gates it governs are looked at again at once
-- (their wakes are set for now), under the limit as it is now. Returns 1.
local field = ARGV[2]
local now = server_now_ms()
if ARGV[3] == '' then
  redis.call('HDEL', RATES, field)
  if field ~= 'key' then redis.call('DEL', rate_state_key(field)) end
else
  -- The starts the state owes under the old limit are owed under the new
  -- one: the time ahead of now is rescaled (none for 'key': each key's
  -- state expires by itself).
  local old = field ~= 'key' and rate_parse(redis.call('HGET', RATES, field))
  local new = rate_parse(ARGV[3])
  local tat = tonumber(redis.call('GET', rate_state_key(field)))
  if old and new and tat and tat > now then
    tat = now + (tat - now) / old.t * new.t
    redis.call('SET', rate_state_key(field), string.format('%.3f', tat), 'PX', math.max(1, math.ceil(tat - now)))
  end
  redis.call('HSET', RATES, field, ARGV[3])
end
if field == 'key' then
  -- Every key's limit: each key gate with a wait and no limit of its own.
  for _, g in ipairs(redis.call('ZRANGE', RATE_WAKES, 0, -1)) do
    if string.sub(g, 1, 4) == 'key:' and redis.call('HEXISTS', RATES, g) == 0 then
      redis.call('ZADD', RATE_WAKES, now, g)
    end
  end
elseif redis.call('ZSCORE', RATE_WAKES, field) then
  redis.call('ZADD', RATE_WAKES, now, field)
end
return 1
