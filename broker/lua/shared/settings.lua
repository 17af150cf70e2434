-- shared/settings.lua: the queue's settings hash (SETTINGS), written by
-- operators and the SDK (pause, max depth, retention), read by the scripts
-- that act on them. A missing field is its default.

-- How long, and how many, finished jobs' records are kept by default.
local DEFAULT_RETENTION_MS = 86400000
local DEFAULT_RETENTION_COUNT = 10000

-- {ms, count}: the record retention (0 in either keeps nothing).
local function retention()
  local v = redis.call('HMGET', SETTINGS, 'retention_ms', 'retention_count')
  return tonumber(v[1]) or DEFAULT_RETENTION_MS, tonumber(v[2]) or DEFAULT_RETENTION_COUNT
end

-- True while the queue is paused: no new claims.
local function is_paused()
  return redis.call('HGET', SETTINGS, 'paused') == '1'
end
