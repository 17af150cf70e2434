-- retry.lua: move a failed entry from its stream to the delayed set.
-- KEYS: the four streams, stats, delayed (shared/queue.lua)
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] priority index (1-4)   ARGV[4] entry id
-- ARGV[5] delayed member (envelope JSON with the next attempt)   ARGV[6] run-at (ms)
-- Returns 1 if moved, 0 if the entry is no longer pending for this consumer
-- (recovery gave it to another worker, which now owns the job).
local stream = stream_at(ARGV[3])
local id = ARGV[4]
if not pending_for(stream, GROUP, ARGV[2], id) then return 0 end
redis.call('ZADD', DELAYED, ARGV[6], ARGV[5])
finish(stream, GROUP, {id})
redis.call('HINCRBY', STATS, COUNTER_RETRIED, 1)
return 1
