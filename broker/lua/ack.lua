-- ack.lua: acknowledge and delete finished entries that this consumer still owns.
-- KEYS[1] stream   KEYS[2] stats hash
-- ARGV[1] group    ARGV[2] consumer   ARGV[3..] entry ids
-- Returns the number of entries acknowledged. An entry that recovery handed to
-- another consumer (this one lost its lease) is left alone: the new owner's
-- pending entry stays, and the completion is not counted twice.
local stream, stats = KEYS[1], KEYS[2]
local group, consumer = ARGV[1], ARGV[2]
local owned = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', stream, group, ARGV[i], ARGV[i], 1, consumer)
  if p[1] then owned[#owned + 1] = ARGV[i] end
end
if #owned == 0 then return 0 end
local n = redis.call('XACK', stream, group, unpack(owned))
redis.call('XDEL', stream, unpack(owned))
redis.call('HINCRBY', stats, 'completed', n)
return n
