-- retry.lua: move a failed entry from its stream to the delayed set.
-- (shared/group_state.lua and shared/remove_done.lua are prepended.)
-- KEYS[1] stream   KEYS[2] delayed zset   KEYS[3] stats hash
-- ARGV[1] group    ARGV[2] consumer   ARGV[3] entry id
-- ARGV[4] delayed member (envelope JSON with the next attempt)   ARGV[5] run-at (ms)
-- Returns 1 if moved, 0 if the entry is no longer pending for this consumer
-- (recovery gave it to another worker, which now owns the job).
local stream, delayed, stats = KEYS[1], KEYS[2], KEYS[3]
local group, consumer, id = ARGV[1], ARGV[2], ARGV[3]
local p = redis.call('XPENDING', stream, group, id, id, 1, consumer)
if not p[1] then return 0 end
redis.call('ZADD', delayed, ARGV[5], ARGV[4])
redis.call('XACK', stream, group, id)
remove_done(stream, group, {id})
redis.call('HINCRBY', stats, 'retried', 1)
return 1
