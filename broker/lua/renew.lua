-- renew.lua: reset the idle time of the entries a live consumer is still running.
-- KEYS: the four streams (shared/queue.lua)
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] priority index (1-4)
-- ARGV[4] lowest id   ARGV[5] highest id   ARGV[6..] entry ids
-- Returns the ids this consumer no longer owns (recovery gave them to
-- another worker); those are not taken back.
local stream = stream_at(ARGV[3])
local consumer = ARGV[2]
if #ARGV < 6 then return {} end
local owned = owned_among(stream, GROUP, consumer, ARGV[4], ARGV[5], ARGV, 6)
if #owned > 0 then
  -- JUSTID keeps the delivery count as it is; min-idle 0 resets the idle time.
  local args = {stream, GROUP, consumer, 0}
  for _, id in ipairs(owned) do args[#args + 1] = id end
  args[#args + 1] = 'JUSTID'
  redis.call('XCLAIM', unpack(args))
end
if #owned == #ARGV - 5 then return {} end
local is_owned, lost = {}, {}
for _, id in ipairs(owned) do is_owned[id] = true end
for i = 6, #ARGV do
  if not is_owned[ARGV[i]] then lost[#lost + 1] = ARGV[i] end
end
return lost
