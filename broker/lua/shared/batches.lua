-- shared/batches.lua (needs clock.lua, names.lua, settings.lua, events.lua,
-- records.lua, admit.lua, gates.lua and deps.lua): batches, groups of jobs
-- with callbacks (see docs/architecture.md, "Batches").
--
-- Each member of batch <b> has the batch as a dependent: '#b:<b>' is in
-- P:{Q}:dependents:<job> (shared/deps.lua), so every script that ends a
-- job (ack, dead letter, cancel, a dead letter removed) counts it, in the
-- same step. The batch's callbacks are jobs enqueued by the script that
-- finishes its last member: on complete when every member has finished,
-- whatever the outcome; on success when every member has succeeded
-- (which a dead member replayed and succeeding can still bring about).
-- Each is enqueued at most once: its job waits in the batch's hash until
-- then, and that step removes it. The keys, under the queue's hash tag:
--   P:{Q}:batches:<b>     hash: total, succeeded, failed, created_at,
--                         completed_at, succeeded_at, description,
--                         on_success / on_complete (the callbacks' job
--                         ids), on_success_job / on_complete_job (their
--                         jobs, JSON, until enqueued), success_dropped
--                         (when on success was given up: a member failed
--                         for good)
--   P:{Q}:deps:#b:<b>     set: the members not finished yet
--   P:{Q}:batch_dead:<b>  set: the members in the dead letters, which a
--                         replay that succeeds counts as succeeded
--   P:{Q}:batch_jobs:<b>  set: every member
--   P:{Q}:batches         zset: batch id -> created_at (ms)
-- (P:{Q}:batch:<key> is another thing: an idempotent enqueue's record.)
-- A batch whose members have all finished for good is kept for the
-- queue's record retention, then its keys expire.
local BATCH_MARK = '#b:'
local BATCHES = QUEUE_BASE .. 'batches'
local BATCH_FIELD = 'batch'
local function batch_key(b)
  return QUEUE_BASE .. 'batches:' .. b
end
local function batch_dead_of(b)
  return QUEUE_BASE .. 'batch_dead:' .. b
end
local function batch_jobs_of(b)
  return QUEUE_BASE .. 'batch_jobs:' .. b
end

-- Jobs `ids` (just written) join batch `b`.
local function batch_join(b, ids)
  local mark = BATCH_MARK .. b
  sadd_all(deps_of(mark), ids)
  sadd_all(batch_jobs_of(b), ids)
  for _, id in ipairs(ids) do
    redis.call('SADD', dependents_of(id), mark)
    redis.call('HINCRBY', DEPENDENTS, id, 1)
  end
end

-- Enqueues a callback's job (JSON: id, type, payload, priority, ...) now,
-- unless its id has come into use since (then that job stands for it).
local function batch_fire(json, now)
  local ok, env = pcall(cjson.decode, json)
  if not ok or type(env) ~= 'table' or type(env.id) ~= 'string' then return end
  local id = env.id
  if redis.call('HEXISTS', INDEX, id) == 1 or redis.call('HEXISTS', SCHEDULED, id) == 1
      or redis.call('ZSCORE', DELAYED, id) or has_record(id, now) then
    return
  end
  env.attempt = '1'
  env.enqueued_at = tostring(now)
  local j = cjson.encode(env)
  redis.call('HSET', SCHEDULED, id, j)
  if gate_enter(gating_on(), id, env.type, env[CONCURRENCY_KEY_FIELD]) then
    redis.call('HDEL', SCHEDULED, id)
    add_envelope(id, j)
  end
  emit(events_cap(), 'enqueued', {id}, {})
end

-- Batch `b` after a member ended: its callbacks, when due; its keys'
-- expiry, once every member has finished for good.
local function batch_settle(b)
  local key = batch_key(b)
  if redis.call('SCARD', deps_of(BATCH_MARK .. b)) > 0 then return end
  local now = server_now_ms()
  local h = redis.call('HMGET', key, 'completed_at', 'succeeded_at', 'failed', 'on_complete_job', 'on_success_job')
  if not h[1] then
    redis.call('HSET', key, 'completed_at', now)
    if h[4] then
      redis.call('HDEL', key, 'on_complete_job')
      batch_fire(h[4], now)
    end
  end
  local dead = redis.call('SCARD', batch_dead_of(b))
  if not h[2] and (tonumber(h[3]) or 0) == 0 then
    redis.call('HSET', key, 'succeeded_at', now)
    if h[5] then
      redis.call('HDEL', key, 'on_success_job')
      batch_fire(h[5], now)
    end
  elseif not h[2] and dead == 0 and h[5] then
    -- A member failed for good (cancelled, or its dead letter removed).
    redis.call('HDEL', key, 'on_success_job')
    redis.call('HSET', key, 'success_dropped', now)
  end
  if dead == 0 then
    local keep = retention()
    keep = math.max(keep, 1)
    redis.call('PEXPIRE', key, keep)
    redis.call('PEXPIRE', batch_jobs_of(b), keep)
  end
end

-- Member `id` of batch `b` ended (`how`: as deps_ended's outcome).
-- Returns true to keep the member's link to the batch (it is dead, and a
-- replay may still succeed).
local function batch_member_ended(b, id, how)
  local key, pending, dead = batch_key(b), deps_of(BATCH_MARK .. b), batch_dead_of(b)
  local keep = false
  if how == 'succeeded' then
    if redis.call('SREM', pending, id) == 1 then
      redis.call('HINCRBY', key, 'succeeded', 1)
    elseif redis.call('SREM', dead, id) == 1 then
      redis.call('HINCRBY', key, 'failed', -1)
      redis.call('HINCRBY', key, 'succeeded', 1)
    else
      return false
    end
  elseif how == 'dead' then
    if redis.call('SREM', pending, id) == 1 then
      redis.call('SADD', dead, id)
      redis.call('HINCRBY', key, 'failed', 1)
    end
    keep = redis.call('SISMEMBER', dead, id) == 1
  elseif how == 'cancelled' then
    if redis.call('SREM', pending, id) == 1 then
      redis.call('HINCRBY', key, 'failed', 1)
    else
      redis.call('SREM', dead, id)
    end
  else
    -- 'dead letter removed': failed for good.
    redis.call('SREM', dead, id)
  end
  batch_settle(b)
  return keep
end

batch_member_hook = batch_member_ended
