-- enqueue_keyed.lua: one chunk of a batch enqueued under an idempotency key,
-- written and marked done at once, unless it was marked done before.
-- KEYS: the four streams, stats, delayed, dead (shared/queue.lua), then
-- KEYS[8] the batch's hash P:{Q}:batch:<key> (field = chunk number)
-- ARGV[1] group (unused)   ARGV[2] chunk number   ARGV[3] the hash's TTL (ms)
-- ARGV[4..] the jobs, each either
--   's', priority index (1-4), n, then n field/value pairs: XADD to that stream
--   'd', run-at (ms), delayed-set member: ZADD to the delayed set
-- Returns 1 when the chunk was written now, 0 when it was written before.
local marker = KEYS[8]
if redis.call('HEXISTS', marker, ARGV[2]) == 1 then return 0 end
local i = 4
while i <= #ARGV do
  local tag = ARGV[i]
  if tag == 's' then
    local n = tonumber(ARGV[i + 2])
    local fields = {}
    for j = 1, 2 * n do fields[j] = ARGV[i + 2 + j] end
    redis.call('XADD', stream_at(ARGV[i + 1]), '*', unpack(fields))
    i = i + 3 + 2 * n
  elseif tag == 'd' then
    redis.call('ZADD', DELAYED, ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  else
    error('ferry: bad job tag ' .. tostring(tag))
  end
end
redis.call('HSET', marker, ARGV[2], 1)
redis.call('PEXPIRE', marker, ARGV[3])
return 1
