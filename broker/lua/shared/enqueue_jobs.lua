-- shared/enqueue_jobs.lua (needs clock.lua, names.lua, entry_ids.lua,
-- group_state.lua, depth.lua, settings.lua, events.lua, records.lua,
-- admit.lua, gates.lua and deps.lua): reading, checking and writing the
-- jobs of enqueue_after.lua, create_batch.lua and add_to_batch.lua. Each
-- job's fields in ARGV: its id, priority index (1-4), type, payload,
-- max_retries, record retention (ms; '' for the queue's), concurrency key
-- ('' for none), what a failed dependency does ('fail', 'release' or
-- 'wait'), k, and the ids of its k dependencies (k may be 0).
-- A dependency is an existing job or one earlier in the call (a flow
-- comes children first). An existing one that succeeded counts as done;
-- one that failed (dead, or cancelled) does what the policy says ('fail'
-- refuses the call); one scheduled, queued, running or waiting is waited
-- for. A job can therefore depend only on jobs that exist before it, and
-- no cycle can form.

-- What dependency `dep` is at `now`: 'succeeded', 'dead', 'cancelled',
-- 'pending' (scheduled, queued, running, or waiting), or nil (no such job).
local function dep_state(dep, now)
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

-- True when job id `id` is in use (a job, or a kept record).
local function id_in_use(id, now)
  return redis.call('HEXISTS', INDEX, id) == 1 or redis.call('HEXISTS', SCHEDULED, id) == 1
    or redis.call('ZSCORE', DELAYED, id) or has_record(id, now)
end

-- The `count` jobs from ARGV[at], read and checked before anything is
-- written (`reserved`: ids this call gives other jobs, a batch's
-- callbacks, which no job may take or depend on; or nil): the jobs, or
-- nil and the error reply:
--   {'duplicate', id}: the id is in use (or twice in the call);
--   {'self', id}: it names itself; {'unknown', dependency, job}: no such
--   job (never enqueued, or finished with its record no longer kept, or
--   later in the call); {'failed', dependency, 'dead' | 'cancelled', job}:
--   that dependency failed and the job's policy is 'fail';
--   {'full', depth, max}: past the queue's max_depth.
local function read_jobs(at, count, now, reserved)
  local jobs, in_call = {}, {}
  for id in pairs(reserved or {}) do in_call[id] = 'reserved' end
  for _ = 1, count do
    local job = {id = ARGV[at], priority = ARGV[at + 1], type = ARGV[at + 2], payload = ARGV[at + 3],
      max_retries = ARGV[at + 4], retention = ARGV[at + 5], ckey = ARGV[at + 6], policy = ARGV[at + 7]}
    local k = tonumber(ARGV[at + 8]) or 0
    local deps = {}
    for j = 1, k do deps[j] = ARGV[at + 8 + j] end
    at = at + 9 + k
    local id = job.id
    if in_call[id] or id_in_use(id, now) then return nil, {'duplicate', id} end
    local pending, seen = {}, {}
    for _, dep in ipairs(deps) do
      if dep == id then return nil, {'self', dep} end
      if not seen[dep] then
        seen[dep] = true
        local st
        if string.find(dep, '/', 1, true) then
          -- Of another queue, registered there first (register_remote.lua):
          -- pending, unless its outcome came before this job.
          st = redis.call('HGET', early_of(id), dep) or 'pending'
          if st == 'dead letter removed' then st = 'dead' end
        elseif in_call[dep] == true then st = 'pending' elseif not in_call[dep] then st = dep_state(dep, now) end
        if not st then return nil, {'unknown', dep, id} end
        if st == 'dead' or st == 'cancelled' then
          if job.policy == 'fail' then return nil, {'failed', dep, st, id} end
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
  local full = past_max_depth(count, max_depth_setting())
  if full then return nil, full end
  return jobs, nil
end

-- Writes `jobs` (read_jobs's), each envelope with the fields `extra`
-- (name -> value, or nil): each job with no dependency left to wait for
-- into its stream (or the wait at a concurrency gate), each other one
-- waiting. Returns {'ok', w1, ..., wn} (each job's count of dependencies
-- it waits for) and the jobs' ids.
local function write_jobs(jobs, now, extra)
  local reply, ids = {'ok'}, {}
  for i, job in ipairs(jobs) do
    local id, ckey = job.id, job.ckey ~= '' and job.ckey or nil
    local env = {id = id, type = job.type, payload = job.payload, attempt = '1', max_retries = job.max_retries,
      enqueued_at = tostring(now), priority = PRIORITIES[tonumber(job.priority)] or PRIORITIES[DEFAULT_PRIORITY],
      [CONCURRENCY_KEY_FIELD] = ckey, [DEP_POLICY_FIELD] = job.policy}
    if job.retention ~= '' then env.retention_ms = job.retention end
    if extra then
      for name, value in pairs(extra) do env[name] = value end
    end
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
        -- (Another queue's job knows its dependents there.)
        if not string.find(dep, '/', 1, true) then
          redis.call('SADD', dependents_of(dep), id)
          redis.call('HINCRBY', DEPENDENTS, dep, 1)
        end
      end
    end
    redis.call('DEL', early_of(id))
    reply[i + 1] = #job.pending
    ids[i] = id
  end
  return reply, ids
end
