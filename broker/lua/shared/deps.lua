-- shared/deps.lua (needs clock.lua, names.lua, records.lua,
-- dead_removal.lua, admit.lua and gates.lua): jobs that wait for other jobs of their queue (see
-- docs/architecture.md, "Dependencies").
--
-- A job enqueued after dependencies that have not finished waits, state
-- `waiting`, its envelope in SCHEDULED (with `dep_policy`: what a failed
-- dependency does to it). It enters its priority stream (through its
-- concurrency gates) when its last dependency succeeds, in the script that
-- records that success: exactly once, however many workers finish
-- dependencies at the same moment, since each finish is one script. A
-- dependency that fails (dead-lettered, or cancelled) does what the
-- waiting job's policy says: 'fail' (the default) ends it cancelled, with
-- the reason, and so on down to its own dependents; 'release' counts the
-- dependency as done; 'wait' keeps it waiting until that dependency is
-- replayed and succeeds. The keys, all under the queue's hash tag:
--   P:{Q}:dependents      hash: job id -> how many jobs wait for it (the
--                         finishing scripts look here: one HLEN when none)
--   P:{Q}:dependents:<id> set: the ids of the jobs waiting for job <id>
--   P:{Q}:deps:<id>       set: the dependencies waiting job <id> still
--                         waits for
--   P:{Q}:dep_results     hash: job id -> how many results of its
--                         dependencies it holds
--   P:{Q}:dep_results:<id> hash: dependency id -> the result it returned
--                         (JSON), for job <id> to read when it runs
--                         (`JobContext::dependency_results`)
--   P:{Q}:outbox          list: outcomes of this queue's jobs for jobs of
--                         other queues that wait for them (members
--                         '@<queue>/<id>' of dependents:<id>), each
--                         '<outcome>\n<queue>/<job>\n<id>', until a
--                         worker's promoter applies it there
--                         (apply_remote.lua) and removes it
--   P:{Q}:early:<id>      hash: '<queue>/<dep>' -> outcome, an outcome
--                         that reached this queue before its job <id>
--                         was written (expires in a day)
--   P:{Q}:flows:<root>    hash: job id -> its parent's id ('' for the
--                         root), every job of the flow <root>; expires the
--                         queue's record retention after the root ends
-- All go when they are no longer needed: a job's sets when it is
-- released or ends, a dependency's when it ends, a job's results when it
-- ends (succeeded or cancelled; a dead letter keeps them for its replay
-- until it is removed). A result is kept for each waiting job, whatever
-- the queue's record retention says.
local DEPENDENTS = QUEUE_BASE .. 'dependents'
local DEP_RESULTS = QUEUE_BASE .. 'dep_results'
local FLOW_FIELD = 'flow'
local OUTBOX = QUEUE_BASE .. 'outbox'
local function early_of(id)
  return QUEUE_BASE .. 'early:' .. id
end
local DEP_POLICY_FIELD = 'dep_policy'

-- The set of the jobs waiting for job `id`, and of the dependencies job
-- `id` still waits for.
local function dependents_of(id)
  return QUEUE_BASE .. 'dependents:' .. id
end
local function deps_of(id)
  return QUEUE_BASE .. 'deps:' .. id
end
local function dep_results_of(id)
  return QUEUE_BASE .. 'dep_results:' .. id
end

-- The result in a record's members ('"type":"x",...,"result":<json>';
-- record_fields puts it last), or nil.
local function result_in(members)
  if not members or members == '' then return nil end
  local _, last = string.find(members, ',"result":', 1, true)
  if last then return string.sub(members, last + 1) end
  if string.sub(members, 1, 9) == '"result":' then return string.sub(members, 10) end
  return nil
end

local function flow_of(root)
  return QUEUE_BASE .. 'flows:' .. root
end

-- The shape of the flow `root` just written (`jobs`, read_jobs's, each
-- with its pending dependencies): each job's parent. The root holds it
-- (in DEP_RESULTS) until it ends.
local function flow_record(root, jobs)
  local in_flow, parent = {}, {}
  for _, job in ipairs(jobs) do in_flow[job.id] = true end
  for _, job in ipairs(jobs) do
    for _, dep in ipairs(job.pending) do
      if in_flow[dep] then parent[dep] = job.id end
    end
  end
  local pairs_ = {}
  for _, job in ipairs(jobs) do
    pairs_[#pairs_ + 1] = job.id
    pairs_[#pairs_ + 1] = parent[job.id] or ''
    if #pairs_ >= 2000 then
      redis.call('HSET', flow_of(root), unpack(pairs_))
      pairs_ = {}
    end
  end
  if #pairs_ > 0 then redis.call('HSET', flow_of(root), unpack(pairs_)) end
  redis.call('HINCRBY', DEP_RESULTS, root, 0)
end

-- Jobs `ids` ended for good: the results of their dependencies they held
-- go, and a flow's root starts its flow's expiry. One HLEN while no job
-- holds any.
local function drop_dep_results(ids)
  if redis.call('HLEN', DEP_RESULTS) == 0 then return end
  local keep
  for _, id in ipairs(ids) do
    if redis.call('HDEL', DEP_RESULTS, id) == 1 then
      redis.call('DEL', dep_results_of(id))
      keep = keep or math.max(retention(), 1)
      redis.call('PEXPIRE', flow_of(id), keep)
    end
  end
end

-- SADD of `members` to `key`, 1,000 at a time (Lua's unpack has a limit).
local function sadd_all(key, members)
  for from = 1, #members, 1000 do
    redis.call('SADD', key, unpack(members, from, math.min(from + 999, #members)))
  end
end

-- The envelope of waiting job `d`, decoded, or nil.
local function dep_envelope(d)
  local json = redis.call('HGET', SCHEDULED, d)
  if not json then return nil, nil end
  local ok, env = pcall(cjson.decode, json)
  if ok and type(env) == 'table' then return env, json end
  return nil, json
end

-- Job `d`'s last dependency succeeded (or was let count as done): into
-- its priority stream, or to the wait at a concurrency gate.
local function dep_release(d)
  redis.call('DEL', deps_of(d))
  local env, json = dep_envelope(d)
  if not json then return end
  if env and not gate_enter(gating_on(), d, env.type, env[CONCURRENCY_KEY_FIELD]) then return end
  redis.call('HDEL', SCHEDULED, d)
  add_envelope(d, json)
end

-- Jobs whose dependency failed, queued while one is handled (so a chain of
-- failures is walked, not recursed into).
local dep_work, dep_busy = {}, false
-- A batch's member ended (shared/batches.lua, which sets it): (batch id,
-- job id, outcome) -> true to keep the member's link to its batch.
local batch_member_hook = nil

-- Ends waiting job `d` cancelled: its dependency `id` failed (`how`:
-- 'dead' or 'cancelled') and its policy is 'fail'.
local function dep_fail(d, id, how, now)
  local env = dep_envelope(d)
  if not env then return end
  redis.call('HDEL', SCHEDULED, d)
  redis.call('DEL', deps_of(d))
  local members = record_members(function(name) return env[name] end, env.priority, nil, nil)
  members = members .. ',"error":' .. cjson.encode('dependency ' .. id .. ' failed (' .. how .. ')')
  record_cancelled({d}, {members}, now)
end

-- Waiting job `d`'s dependency `dep` (of this queue, or '<queue>/<id>')
-- ended with `how`: released, failed or kept waiting as its policy says.
-- Returns false when `d` no longer waits for it.
local function dep_resolved(d, dep, how, now)
  if redis.call('SISMEMBER', deps_of(d), dep) == 0 then return false end
  local policy = 'fail'
  if how ~= 'succeeded' then
    local env = dep_envelope(d)
    policy = (env and env[DEP_POLICY_FIELD]) or 'fail'
  end
  if how == 'succeeded' or policy == 'release' then
    redis.call('SREM', deps_of(d), dep)
    if redis.call('SCARD', deps_of(d)) == 0 then dep_release(d) end
  elseif not (policy == 'wait' and how ~= 'dead letter removed') then
    dep_fail(d, dep, how, now)
  end
  return true
end

-- Jobs `ids` ended: `outcome` is 'succeeded', 'dead', 'cancelled' or
-- 'dead letter removed'. Each job waiting for one goes on as its policy
-- says; a succeeded one's result (`records`, job id -> its record's
-- members, when given) is kept for each. Two HLENs while no job of the
-- queue has dependents or holds results.
local function deps_ended(ids, outcome, records)
  if #ids == 0 then return end
  if outcome ~= 'dead' then drop_dep_results(ids) end
  if redis.call('HLEN', DEPENDENTS) == 0 then return end
  for _, id in ipairs(ids) do dep_work[#dep_work + 1] = {id, outcome, records and result_in(records[id])} end
  if dep_busy then return end
  dep_busy = true
  local now = server_now_ms()
  local i = 1
  while i <= #dep_work do
    local id, how, result = dep_work[i][1], dep_work[i][2], dep_work[i][3]
    i = i + 1
    if redis.call('HEXISTS', DEPENDENTS, id) == 1 then
      local set = dependents_of(id)
      local kept = {}
      for _, d in ipairs(redis.call('SMEMBERS', set)) do
        if string.sub(d, 1, 3) == '#b:' then
          -- Its batch (shared/batches.lua) counts it.
          if batch_member_hook and batch_member_hook(string.sub(d, 4), id, how) then kept[#kept + 1] = d end
        elseif string.sub(d, 1, 1) == '@' then
          -- A job of another queue: the outcome goes there through the
          -- outbox; a dead one stays linked, for its replay.
          redis.call('RPUSH', OUTBOX, how .. '\n' .. string.sub(d, 2) .. '\n' .. id)
          if how == 'dead' then kept[#kept + 1] = d end
        -- (A job that no longer waits for it, cancelled since, is passed.)
        elseif redis.call('SISMEMBER', deps_of(d), id) == 1 then
        local policy = 'fail'
        if how ~= 'succeeded' then
          local env = dep_envelope(d)
          policy = (env and env[DEP_POLICY_FIELD]) or 'fail'
        end
        if how == 'succeeded' or policy == 'release' then
          if result then
            redis.call('HSET', dep_results_of(d), id, result)
            redis.call('HINCRBY', DEP_RESULTS, d, 1)
          end
          redis.call('SREM', deps_of(d), id)
          if redis.call('SCARD', deps_of(d)) == 0 then dep_release(d) end
        elseif policy == 'wait' and how ~= 'dead letter removed' then
          kept[#kept + 1] = d
        else
          -- record_cancelled queues d's own dependents on dep_work.
          dep_fail(d, id, how, now)
        end
        end
      end
      redis.call('DEL', set)
      if #kept > 0 then
        sadd_all(set, kept)
        redis.call('HSET', DEPENDENTS, id, #kept)
      else
        redis.call('HDEL', DEPENDENTS, id)
      end
    end
  end
  dep_work = {}
  dep_busy = false
end

-- Every job that ends cancelled or dead (records.lua, dead_letter.lua)
-- tells its dependents; so does a dead letter removed (purged, or
-- dropped by the cap: dead_removal.lua), which no replay can bring back,
-- so a dependent that waits for its replay ends cancelled then.
deps_ended_hook = deps_ended
dead_removed_hook = deps_ended
