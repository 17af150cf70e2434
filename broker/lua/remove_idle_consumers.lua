-- remove_idle_consumers.lua: delete consumers that are gone and own no pending entries.
-- KEYS: the four streams (shared/queue.lua)
-- ARGV[1] group   ARGV[2] this consumer (never removed)
-- ARGV[3] idle threshold (ms): consumers idle at least this long qualify
-- Returns the number of consumers removed. Checking and deleting happen in
-- one script, so a consumer cannot claim an entry in between and lose it.
local me, min_idle = ARGV[2], tonumber(ARGV[3])
local removed = 0
for _, stream in ipairs(STREAMS) do
  local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', stream, GROUP)
  if ok then
    for _, c in ipairs(consumers) do
      local info = {}
      for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
      if info.name ~= me and tonumber(info.pending) == 0 and tonumber(info.idle) >= min_idle then
        redis.call('XGROUP', 'DELCONSUMER', stream, GROUP, info.name)
        removed = removed + 1
      end
    end
  end
end
return removed
