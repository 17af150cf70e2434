-- ack.lua: acknowledge and remove finished entries that this consumer still owns.
-- KEYS: the four streams, stats (shared/queue.lua)
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] priority index (1-4)
-- ARGV[4] lowest id   ARGV[5] highest id   ARGV[6..] entry ids
-- Returns the number of entries acknowledged. An entry that recovery handed to
-- another consumer (this one lost its lease) is left alone: the new owner's
-- pending entry stays, and the completion is not counted twice.
local stream = stream_at(ARGV[3])
if #ARGV < 6 then return 0 end
local owned = owned_among(stream, GROUP, ARGV[2], ARGV[4], ARGV[5], ARGV, 6)
if #owned == 0 then return 0 end
local n = finish(stream, GROUP, owned)
redis.call('HINCRBY', STATS, COUNTER_COMPLETED, n)
return n
