-- dead_letter.lua: move a failed or malformed entry from its stream to the dead-letter stream.
-- (shared/group_state.lua and shared/remove_done.lua are prepended.)
-- KEYS[1] stream   KEYS[2] dead-letter stream   KEYS[3] stats hash
-- ARGV[1] group    ARGV[2] consumer   ARGV[3] entry id
-- ARGV[4] cap on the dead-letter stream's length (0 = keep every entry)
-- ARGV[5] stats counter to bump ('dead' or 'malformed')
-- ARGV[6..] field, value, ... of the dead-letter entry
-- Returns {moved, dropped}: moved is 1, or 0 if the entry is no longer pending
-- for this consumer; dropped counts old dead-letter entries the cap removed
-- (also added to the stats field 'dead_dropped').
local stream, dead, stats = KEYS[1], KEYS[2], KEYS[3]
local group, consumer, id = ARGV[1], ARGV[2], ARGV[3]
local cap = tonumber(ARGV[4])
local p = redis.call('XPENDING', stream, group, id, id, 1, consumer)
if not p[1] then return {0, 0} end
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', dead, '*', unpack(fields))
local dropped = 0
if cap > 0 then
  dropped = redis.call('XTRIM', dead, 'MAXLEN', cap)
  if dropped > 0 then redis.call('HINCRBY', stats, 'dead_dropped', dropped) end
end
redis.call('XACK', stream, group, id)
remove_done(stream, group, {id})
redis.call('HINCRBY', stats, ARGV[5], 1)
return {1, dropped}
