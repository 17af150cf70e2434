-- hold_queue.lua: no job of the queue, or of one type or concurrency key,
-- starts for a while (a handler's JobError::rate_limited: an upstream
-- said 429), fleet-wide.
-- KEYS: the queue's keys up to scheduled (shared/queue.lua).
-- ARGV[1] group   ARGV[2] how long, ms
-- ARGV[3] the gate held ('type:<T>' or 'key:<K>'), or '' (or absent) for
-- the whole queue
-- Sets the hold's end (server ms) to now + ARGV[2], unless it already
-- holds longer: the queue's in the settings field `held_until`, a gate's
-- in the rates hash field 'hold:<gate>', with a wake then, when the
-- promoter removes it (shared/rates.lua). Returns the hold's end.
local now = server_now_ms()
local until_ms = now + tonumber(ARGV[2])
local gate = ARGV[3] or ''
if gate ~= '' then
  local old = tonumber(redis.call('HGET', RATES, 'hold:' .. gate))
  if old and old >= until_ms then return old end
  redis.call('HSET', RATES, 'hold:' .. gate, until_ms)
  rate_wake_at(gate, until_ms)
  return until_ms
end
local old = tonumber(redis.call('HGET', SETTINGS, 'held_until'))
if old and old >= until_ms then return old end
redis.call('HSET', SETTINGS, 'held_until', until_ms)
return until_ms
