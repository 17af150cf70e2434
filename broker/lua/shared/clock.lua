-- shared/clock.lua: the one clock every timing decision uses, the Redis
-- server's (TIME), so a worker or producer whose host clock is wrong cannot
-- fire or park a fleet's jobs. (Scripts are replicated by their effects, so
-- reading TIME before a write is safe on every supported Redis.)

-- Milliseconds since the epoch by the server's clock.
local function server_now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
