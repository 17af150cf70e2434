-- start_suspect.lua: count the delivery of a suspect entry as it starts.
-- KEYS: the four streams (shared/queue.lua)
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] priority index (1-4)   ARGV[4] entry id
-- Returns the entry's delivery count, this one included, or 0 when the entry
-- is no longer pending for this consumer (then it must not run here).
-- recover.lua hands a suspect out without counting a delivery, so that a
-- worker that dies while the suspect waits for room does not count against it.
local stream = stream_at(ARGV[3])
local consumer, id = ARGV[2], ARGV[4]
local p = pending_for(stream, GROUP, consumer, id)
if not p then return 0 end
local n = tonumber(p[4]) + 1
redis.call('XCLAIM', stream, GROUP, consumer, 0, id, 'RETRYCOUNT', n, 'JUSTID')
return n
