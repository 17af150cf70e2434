-- hold_queue.lua: no job of the queue starts for a while (a handler's
-- JobError::rate_limited: an upstream said 429), fleet-wide.
-- KEYS: the queue's keys up to settings (shared/queue.lua).
-- ARGV[1] group   ARGV[2] how long, ms
-- Sets the settings field `held_until` (server ms) to now + ARGV[2],
-- unless it already holds longer. Returns the hold's end.
local now = server_now_ms()
local until_ms = now + tonumber(ARGV[2])
local old = tonumber(redis.call('HGET', SETTINGS, 'held_until'))
if old and old >= until_ms then return old end
redis.call('HSET', SETTINGS, 'held_until', until_ms)
return until_ms
