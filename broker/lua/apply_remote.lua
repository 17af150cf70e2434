-- apply_remote.lua: an outcome of another queue's job for jobs of this
-- queue that wait for it (cross-queue dependencies, shared/deps.lua), as
-- that queue's outbox holds it. Idempotent: an outcome already applied
-- (the dependency no longer in P:{Q}:deps:<id>) changes nothing, so the
-- promoters that carry outboxes may apply one twice.
-- KEYS: the four streams ... events (shared/queue.lua)
-- ARGV[1] group   ARGV[2] the waiting job's id   ARGV[3] the dependency,
-- '<queue>/<id>'   ARGV[4] its outcome ('succeeded', 'dead', 'cancelled',
-- 'dead letter removed').
-- Returns 'applied', 'stale' (nothing to do), or 'early' (the job is not
-- written yet: kept for it in P:{Q}:early:<id> for a day).
local now = server_now_ms()
local id, dep, how = ARGV[2], ARGV[3], ARGV[4]
if dep_resolved(id, dep, how, now) then return 'applied' end
if redis.call('EXISTS', deps_of(id)) == 1 or redis.call('HEXISTS', SCHEDULED, id) == 1
    or redis.call('HEXISTS', INDEX, id) == 1 or redis.call('ZSCORE', DELAYED, id) or has_record(id, now) then
  return 'stale'
end
redis.call('HSET', early_of(id), dep, how)
redis.call('PEXPIRE', early_of(id), 86400000)
return 'early'
