-- renew.lua: reset the idle time of the entries a live consumer is still running.
-- KEYS[1] stream   ARGV[1] group   ARGV[2] consumer   ARGV[3..] entry ids
-- Returns the ids this consumer no longer owns (recovery gave them to
-- another worker); those are not taken back.
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local owned, lost = {}, {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', stream, group, ARGV[i], ARGV[i], 1, consumer)
  if p[1] then owned[#owned + 1] = ARGV[i] else lost[#lost + 1] = ARGV[i] end
end
if #owned > 0 then
  -- JUSTID keeps the delivery count as it is; min-idle 0 resets the idle time.
  local args = {stream, group, consumer, 0}
  for _, id in ipairs(owned) do args[#args + 1] = id end
  args[#args + 1] = 'JUSTID'
  redis.call('XCLAIM', unpack(args))
end
return lost
