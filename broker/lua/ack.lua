-- ack.lua: acknowledge and remove finished entries that this consumer still owns.
-- (shared/group_state.lua and shared/remove_done.lua are prepended.)
-- KEYS[1] stream   KEYS[2] stats hash
-- ARGV[1] group    ARGV[2] consumer   ARGV[3] lowest id   ARGV[4] highest id
-- ARGV[5..] entry ids
-- Returns the number of entries acknowledged. An entry that recovery handed to
-- another consumer (this one lost its lease) is left alone: the new owner's
-- pending entry stays, and the completion is not counted twice.
-- Ownership is checked with one XPENDING over this consumer's own pending
-- entries in [lowest, highest], not one call per id.
local stream, stats = KEYS[1], KEYS[2]
local group, consumer = ARGV[1], ARGV[2]
local mine = {}
for _, e in ipairs(redis.call('XPENDING', stream, group, ARGV[3], ARGV[4], 1000000, consumer)) do
  mine[e[1]] = true
end
local owned = {}
for i = 5, #ARGV do
  if mine[ARGV[i]] then owned[#owned + 1] = ARGV[i] end
end
if #owned == 0 then return 0 end
local n = redis.call('XACK', stream, group, unpack(owned))
remove_done(stream, group, owned)
redis.call('HINCRBY', stats, 'completed', n)
return n
