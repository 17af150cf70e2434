-- enqueue_after.lua: one job that runs after other jobs of its queue
-- succeed (shared/deps.lua).
-- KEYS: the four streams ... events (shared/queue.lua)
-- ARGV[1] group   ARGV[2] the job's id   ARGV[3] priority index (1-4)
-- ARGV[4] type   ARGV[5] payload   ARGV[6] max_retries
-- ARGV[7] its record retention (ms; '' for the queue's)
-- ARGV[8] concurrency key ('' for none)
-- ARGV[9] what a failed dependency does: 'fail', 'release' or 'wait'
-- ARGV[10..] the ids of its dependencies
-- Each dependency must exist: one that succeeded counts as done; one that
-- failed (dead, or cancelled) does what ARGV[9] says ('fail' refuses the
-- job); one scheduled, queued, running or waiting is waited for. A job
-- can therefore depend only on jobs that exist before it, and no cycle
-- can form. Returns one of
--   {'queued'}: every dependency is done, so it entered its stream (or
--   the wait at a concurrency gate);
--   {'waiting', n}: it waits for n dependencies, state `waiting`;
--   {'duplicate', id}: the id is in use; {'self', id}: it names itself;
--   {'unknown', id}: no such job (never enqueued, or finished with its
--   record no longer kept); {'failed', id, 'dead' | 'cancelled'}: that
--   dependency failed and the policy is 'fail';
--   {'full', depth, max}: past the queue's max_depth.
-- Nothing is written unless the reply is 'queued' or 'waiting'.
local id = ARGV[2]
local now = server_now_ms()
if redis.call('HEXISTS', INDEX, id) == 1 or redis.call('HEXISTS', SCHEDULED, id) == 1
    or redis.call('ZSCORE', DELAYED, id) or has_record(id, now) then
  return {'duplicate', id}
end

-- What dependency `dep` is: 'succeeded', 'dead', 'cancelled', 'pending'
-- (scheduled, queued, running, or waiting), or nil (no such job).
local function dep_state(dep)
  local rec = redis.call('HGET', RESULTS, dep)
  if rec then
    local expires = tonumber(redis.call('ZSCORE', RETENTION, dep))
    if expires and expires <= now then return nil end
    local ok, r = pcall(cjson.decode, rec)
    return (ok and type(r) == 'table' and r.state) or 'succeeded'
  end
  if redis.call('HEXISTS', SCHEDULED, dep) == 1 or redis.call('ZSCORE', DELAYED, dep) then return 'pending' end
  local loc = redis.call('HGET', INDEX, dep) or dep
  local kind, entry_id = string.match(loc, '^(%a+)%-(%d+%-%d+)$')
  if kind == 'dead' then
    if #redis.call('XRANGE', DEAD, entry_id, entry_id) > 0 then return 'dead' end
    return nil
  end
  local index = kind and PRIORITY_INDEX[kind]
  if not index then return nil end
  local stream = STREAMS[index]
  if #redis.call('XRANGE', stream, entry_id, entry_id) == 0 then return nil end
  local st = group_state(stream, GROUP)
  if st then
    if redis.call('XPENDING', stream, GROUP, entry_id, entry_id, 1)[1] then return 'pending' end
    -- Delivered and no longer pending: finished, with no record kept.
    if st.last and not id_less(st.last, entry_id) then return nil end
  end
  return 'pending'
end

local policy = ARGV[9]
local pending, seen = {}, {}
for j = 10, #ARGV do
  local dep = ARGV[j]
  if dep == id then return {'self', dep} end
  if not seen[dep] then
    seen[dep] = true
    local st = dep_state(dep)
    if not st then return {'unknown', dep} end
    if st == 'dead' or st == 'cancelled' then
      if policy == 'fail' then return {'failed', dep, st} end
      if policy == 'wait' then pending[#pending + 1] = dep end
    elseif st ~= 'succeeded' then
      pending[#pending + 1] = dep
    end
  end
end

local max_depth = tonumber(redis.call('HGET', SETTINGS, 'max_depth'))
if max_depth and max_depth > 0 then
  local depth = queue_depth(max_depth)
  if depth + 1 > max_depth then return {'full', depth, max_depth} end
end

local ckey = ARGV[8] ~= '' and ARGV[8] or nil
local env = {id = id, type = ARGV[4], payload = ARGV[5], attempt = '1', max_retries = ARGV[6],
  enqueued_at = tostring(now), priority = PRIORITIES[tonumber(ARGV[3])] or PRIORITIES[DEFAULT_PRIORITY],
  [CONCURRENCY_KEY_FIELD] = ckey, [DEP_POLICY_FIELD] = policy}
if ARGV[7] ~= '' then env.retention_ms = ARGV[7] end
local json = cjson.encode(env)
if #pending == 0 then
  redis.call('HSET', SCHEDULED, id, json)
  if gate_enter(gating_on(), id, env.type, ckey) then
    redis.call('HDEL', SCHEDULED, id)
    add_envelope(id, json)
  end
  emit(events_cap(), 'enqueued', {id}, {})
  return {'queued'}
end
-- The envelope first: under maxmemory a script's first write that may
-- grow memory is the one Redis refuses.
redis.call('HSET', SCHEDULED, id, json)
sadd_all(deps_of(id), pending)
for _, dep in ipairs(pending) do
  redis.call('SADD', dependents_of(dep), id)
  redis.call('HINCRBY', DEPENDENTS, dep, 1)
end
emit(events_cap(), 'enqueued', {id}, {})
return {'waiting', #pending}
