-- start_suspect.lua: count the delivery of a suspect entry as it starts.
-- KEYS[1] stream   ARGV[1] group   ARGV[2] consumer   ARGV[3] entry id
-- Returns the entry's delivery count, this one included, or 0 when the entry
-- is no longer pending for this consumer (then it must not run here).
-- recover.lua hands a suspect out without counting a delivery, so that a
-- worker that dies while the suspect waits for room does not count against it.
local stream, group, consumer, id = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local p = redis.call('XPENDING', stream, group, id, id, 1, consumer)
if not p[1] then return 0 end
local n = tonumber(p[1][4]) + 1
redis.call('XCLAIM', stream, group, consumer, 0, id, 'RETRYCOUNT', n, 'JUSTID')
return n
