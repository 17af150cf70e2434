-- enqueue_after.lua: jobs that run after other jobs of their queue
-- succeed (shared/deps.lua): one job after its dependencies, or a flow (a
-- tree of jobs, each after its children), written all or none.
-- KEYS: the four streams ... events (shared/queue.lua)
-- ARGV[1] group   ARGV[2] n, the number of jobs; then each job's fields:
--   its id, priority index (1-4), type, payload, max_retries, record
--   retention (ms; '' for the queue's), concurrency key ('' for none),
--   what a failed dependency does ('fail', 'release' or 'wait'), k, and
--   the ids of its k dependencies (k may be 0).
-- A dependency is an existing job or one earlier in the call (a flow
-- comes children first). An existing one that succeeded counts as done;
-- one that failed (dead, or cancelled) does what the policy says ('fail'
-- refuses the call); one scheduled, queued, running or waiting is waited
-- for. A job can therefore depend only on jobs that exist before it, and
-- no cycle can form. Returns one of
--   {'ok', w1, ..., wn}: each job's count of dependencies it waits for
--   (0: it entered its stream, or the wait at a concurrency gate; or,
--   while waiting, state `waiting`);
--   {'duplicate', id}: the id is in use (or twice in the call);
--   {'self', id}: it names itself; {'unknown', dependency, job}: no such
--   job (never enqueued, or finished with its record no longer kept, or
--   later in the call); {'failed', dependency, 'dead' | 'cancelled', job}:
--   that dependency failed and the job's policy is 'fail';
--   {'full', depth, max}: past the queue's max_depth.
-- Nothing is written unless the reply is 'ok'.
local now = server_now_ms()

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

-- The jobs, read and checked before anything is written.
local jobs, in_call = {}, {}
local at = 3
for _ = 1, tonumber(ARGV[2]) or 0 do
  local job = {id = ARGV[at], priority = ARGV[at + 1], type = ARGV[at + 2], payload = ARGV[at + 3],
    max_retries = ARGV[at + 4], retention = ARGV[at + 5], ckey = ARGV[at + 6], policy = ARGV[at + 7]}
  local k = tonumber(ARGV[at + 8]) or 0
  local deps = {}
  for j = 1, k do deps[j] = ARGV[at + 8 + j] end
  at = at + 9 + k
  local id = job.id
  if in_call[id] or redis.call('HEXISTS', INDEX, id) == 1 or redis.call('HEXISTS', SCHEDULED, id) == 1
      or redis.call('ZSCORE', DELAYED, id) or has_record(id, now) then
    return {'duplicate', id}
  end
  local pending, seen = {}, {}
  for _, dep in ipairs(deps) do
    if dep == id then return {'self', dep} end
    if not seen[dep] then
      seen[dep] = true
      local st = in_call[dep] and 'pending' or dep_state(dep)
      if not st then return {'unknown', dep, id} end
      if st == 'dead' or st == 'cancelled' then
        if job.policy == 'fail' then return {'failed', dep, st, id} end
        if job.policy == 'wait' then pending[#pending + 1] = dep end
      elseif st ~= 'succeeded' then
        pending[#pending + 1] = dep
      end
    end
  end
  job.pending = pending
  in_call[id] = true
  jobs[#jobs + 1] = job
end

local max_depth = tonumber(redis.call('HGET', SETTINGS, 'max_depth'))
if max_depth and max_depth > 0 then
  local depth = queue_depth(max_depth)
  if depth + #jobs > max_depth then return {'full', depth, max_depth} end
end

local reply, ids = {'ok'}, {}
for i, job in ipairs(jobs) do
  local id, ckey = job.id, job.ckey ~= '' and job.ckey or nil
  local env = {id = id, type = job.type, payload = job.payload, attempt = '1', max_retries = job.max_retries,
    enqueued_at = tostring(now), priority = PRIORITIES[tonumber(job.priority)] or PRIORITIES[DEFAULT_PRIORITY],
    [CONCURRENCY_KEY_FIELD] = ckey, [DEP_POLICY_FIELD] = job.policy}
  if job.retention ~= '' then env.retention_ms = job.retention end
  local json = cjson.encode(env)
  -- The envelope first: under maxmemory a script's first write that may
  -- grow memory is the one Redis refuses.
  redis.call('HSET', SCHEDULED, id, json)
  if #job.pending == 0 then
    if gate_enter(gating_on(), id, env.type, ckey) then
      redis.call('HDEL', SCHEDULED, id)
      add_envelope(id, json)
    end
  else
    sadd_all(deps_of(id), job.pending)
    for _, dep in ipairs(job.pending) do
      redis.call('SADD', dependents_of(dep), id)
      redis.call('HINCRBY', DEPENDENTS, dep, 1)
    end
  end
  reply[i + 1] = #job.pending
  ids[i] = id
end
emit(events_cap(), 'enqueued', ids, {})
return reply
