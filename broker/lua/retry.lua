-- retry.lua: move a failed entry from its stream to the delayed set.
-- KEYS: the four streams ... scheduled (shared/queue.lua)
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] priority index (1-4)   ARGV[4] entry id
-- ARGV[5] the next attempt's envelope (JSON, the job's SCHEDULED value)
-- ARGV[6] delay (ms): the job is due that long after now by the server's
-- clock (shared/clock.lua), whatever the worker's clock says.
-- ARGV[7] the job id: its member in the delayed set
-- ARGV[8] when the failed attempt started (ms; '' when not known): for the
-- record of a job that ends cancelled
-- Returns 1 if moved, 0 if the entry is no longer pending for this consumer
-- (recovery gave it to another worker, which now owns the job), 2 if the
-- job's cancellation was asked for: it ends cancelled instead.
-- The entry is acknowledged and removed first: under maxmemory (noeviction)
-- Redis refuses a script's first write if it may grow memory, but not the
-- writes after one, so a retry is recorded even when Redis is full (it
-- frees about what it adds), instead of the job running again at once.
-- The time is read before any write: a TIME the server refuses (an ACL
-- without +time) must fail the script before it has removed anything.
local now = server_now_ms()
local stream = stream_at(ARGV[3])
local id = ARGV[4]
local job = ARGV[7]
if not pending_for(stream, GROUP, ARGV[2], id) then return 0 end
local cancelled = cancels_among({job})
local members = ''
if cancelled then
  local e = redis.call('XRANGE', stream, id, id)[1]
  if e then members = entry_record(e[2], 1, id, PRIORITIES[tonumber(ARGV[3])], ARGV[8], ARGV[2]) end
end
finish(stream, GROUP, {id})
-- Its concurrency slots free while it waits (promote.lua takes them again).
gate_release({job})
if cancelled then
  record_cancelled({job}, {members}, now)
  return 2
end
redis.call('ZADD', DELAYED, now + tonumber(ARGV[6]), job)
redis.call('HSET', SCHEDULED, job, ARGV[5])
redis.call('HDEL', INDEX, job)
forget_progress({job})
redis.call('HINCRBY', STATS, COUNTER_RETRIED, 1)
redis.call('HINCRBY', STATS, COUNTER_RETRIED .. ':' .. PRIORITIES[tonumber(ARGV[3])], 1)
timing_count(now, 't', 1, PRIORITIES[tonumber(ARGV[3])])
emit(events_cap(), 'retrying', {job}, {'worker', ARGV[2], 'run_at', now + tonumber(ARGV[6])})
return 1
