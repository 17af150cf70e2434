-- shared/rates.lua (needs clock.lua, names.lua, admit.lua and gates.lua):
-- rate limits of a job type or a concurrency key, and holds on them,
-- checked as each job starts (see docs/architecture.md, "Rate limits of
-- a type or a key: rate gates").
--
-- A rate gate is 'type:<T>' (the jobs of type T) or 'key:<K>' (the jobs
-- with concurrency key K) that has a limit (n starts per period with a
-- burst, GCRA on the server's clock, as the queue's own limit in
-- settings.lua) or a hold (a handler's JobError::rate_limited for its
-- type or key: nothing of it starts before the hold ends). A claim that
-- reads a job whose gate has no slot now does not hand it out: in the same
-- script it parks the job at the end of the gate's wait list, its envelope
-- in SCHEDULED with `rate_gate` naming the gate, and sets the gate's wake
-- for its next slot. At a wake the promoter lets the oldest waiting go
-- back to their streams, as many as the gate has slots then; they carry
-- `rate_gate`, so the claim that reads them gives them the slots before
-- any newcomer, which waits behind them while the list is not empty. The
-- slot is taken as the job starts, so no period starts more than the
-- limit and its burst, however long a job sat in its stream; a job is
-- parked at most once per slot it waits for, and never spun. The keys, all
-- under the queue's hash tag (names built from SETTINGS'):
--   P:{Q}:rates       hash: 'type:<T>', 'key:<K>', 'key' (every key's
--                     limit where it has none of its own) ->
--                     '<n> <period ms> <burst>'; 'hold:<gate>' -> the
--                     server ms the gate's hold ends
--   P:{Q}:rate:<gate> string: the gate's theoretical arrival time (ms),
--                     expiring when it has passed (it then says nothing)
--   P:{Q}:rate_wait:<gate>  list: the ids of the jobs parked there, oldest first
--   P:{Q}:rate_wakes  sorted set: gate -> when the promoter next looks at
--                     its wait (ms); every gate with a wait, or a hold, has one
local RATES = QUEUE_BASE .. 'rates'
local RATE_WAKES = QUEUE_BASE .. 'rate_wakes'
-- The envelope field of a parked job (the gate it waits at), and of an
-- entry let back from a wait (the gate whose slot it is first in line for).
local RATE_GATE_FIELD = 'rate_gate'

-- The wait list of gate `g`, and the key of its GCRA state.
local function rate_wait_list(g)
  return QUEUE_BASE .. 'rate_wait:' .. g
end
local function rate_state_key(g)
  return QUEUE_BASE .. 'rate:' .. g
end

-- True when the queue has a rate limit or hold of a type or key (one
-- call: a claim asks once).
local function rates_on()
  return redis.call('EXISTS', RATES) == 1
end

-- The rules read by this call, by gate: {limit = {t, tolerance} or false,
-- hold = ms or false, tat = the GCRA state or nil (not read yet),
-- waiting = the wait list's length or nil, dirty = tat to write}. A script
-- runs alone, so what it read once holds for the whole call.
local rate_rules = {}
local rate_each_key = nil

-- The limit text '<n> <period ms> <burst>' as {t, tolerance}, or false.
local function rate_parse(text)
  if not text then return false end
  local n, period, burst = string.match(text, '^(%d+) (%d+) (%d+)$')
  n, period, burst = tonumber(n), tonumber(period), tonumber(burst)
  if not n or n <= 0 or period <= 0 then return false end
  local t = period / n
  return {t = t, tolerance = (math.max(burst, 1) - 1) * t}
end

-- The rule of gate `g` (see rate_rules).
local function rate_rule(g)
  local r = rate_rules[g]
  if r then return r end
  local v = redis.call('HMGET', RATES, g, 'hold:' .. g)
  local limit = v[1]
  if not limit and string.sub(g, 1, 4) == 'key:' then
    if rate_each_key == nil then rate_each_key = redis.call('HGET', RATES, 'key') or false end
    limit = rate_each_key or nil
  end
  r = {limit = rate_parse(limit), hold = tonumber(v[2]) or false}
  rate_rules[g] = r
  return r
end

-- The GCRA theoretical arrival time of gate `g` (rule `r`), at least `now`.
local function rate_tat(g, r, now)
  if r.tat == nil then r.tat = tonumber(redis.call('GET', rate_state_key(g))) or 0 end
  return math.max(r.tat, now)
end

-- Whether a job may start now under gate `g`: true, or false and the
-- server ms from which one may.
local function rate_check(g, now)
  local r = rate_rule(g)
  if r.hold and r.hold > now then return false, r.hold end
  if not r.limit then return true, nil end
  local tat = rate_tat(g, r, now)
  if now + r.limit.tolerance >= tat then return true, nil end
  return false, math.ceil(tat - r.limit.tolerance)
end

-- Takes a slot of gate `g` for a job that starts now (after rate_check
-- said it may); written by rate_flush.
local function rate_take_slot(g, now)
  local r = rate_rules[g]
  if not (r and r.limit) then return end
  r.tat = rate_tat(g, r, now) + r.limit.t
  r.dirty = true
end

-- Writes the slots taken in this call: each gate's state, expiring when
-- its time has passed.
local function rate_flush(now)
  for g, r in pairs(rate_rules) do
    if r.dirty then
      redis.call('SET', rate_state_key(g), string.format('%.3f', r.tat), 'PX', math.max(1, math.ceil(r.tat - now)))
      r.dirty = false
    end
  end
end

-- Sets gate `g`'s wake for `at` (ms), unless one is set earlier.
local function rate_wake_at(g, at)
  local cur = tonumber(redis.call('ZSCORE', RATE_WAKES, g))
  if not cur or at < cur then redis.call('ZADD', RATE_WAKES, at, g) end
end

-- The length of gate `g`'s wait list, read once per call.
local function rate_waiting(g)
  local r = rate_rule(g)
  if r.waiting == nil then r.waiting = redis.call('LLEN', rate_wait_list(g)) end
  return r.waiting
end

-- The rate gates of a job of type `t` with concurrency key `k` (nil or ''
-- for none): its key's, then its type's, those with a limit or a hold.
local function rate_gates_of(t, k)
  local out = {}
  if type(k) == 'string' and k ~= '' then
    local r = rate_rule('key:' .. k)
    if r.limit or r.hold then out[#out + 1] = 'key:' .. k end
  end
  if type(t) == 'string' then
    local r = rate_rule('type:' .. t)
    if r.limit or r.hold then out[#out + 1] = 'type:' .. t end
  end
  return out
end

-- Whether the job in entry `fields` may start now. Returns true (its
-- slots are taken), or false, the gate it waits at and the ms of that
-- gate's next slot.
local function rate_admit(fields, now)
  local gates = rate_gates_of(field_in(fields, 1, 'type'), field_in(fields, 1, CONCURRENCY_KEY_FIELD))
  if #gates == 0 then return true end
  local came = field_in(fields, 1, RATE_GATE_FIELD)
  for _, g in ipairs(gates) do
    local ok, at = rate_check(g, now)
    if not ok then return false, g, at end
    -- A newcomer waits behind the jobs already parked at the gate (whose
    -- wake is then due now, were it missing).
    if g ~= came and rate_waiting(g) > 0 then return false, g, now end
  end
  for _, g in ipairs(gates) do rate_take_slot(g, now) end
  return true
end

-- Parks the job `job` (entry `fields`, just read from the stream of
-- priority index `i`) at gate `g`: its envelope to SCHEDULED, naming the
-- gate; its id to the end of the gate's list, or the head when it was
-- first in line there already; the gate's wake for `at`, unless one is
-- set earlier.
-- The caller removes its entry; its concurrency slots are freed here.
local function rate_park(i, job, fields, g, at)
  local env = {}
  for j = 1, #fields - 1, 2 do env[fields[j]] = fields[j + 1] end
  local first = env[RATE_GATE_FIELD] == g
  env.id = job
  env[PRIORITY_FIELD] = PRIORITIES[i]
  env[RATE_GATE_FIELD] = g
  redis.call('HSET', SCHEDULED, job, cjson.encode(env))
  redis.call('HDEL', INDEX, job)
  if first then
    redis.call('LPUSH', rate_wait_list(g), job)
  else
    redis.call('RPUSH', rate_wait_list(g), job)
  end
  local r = rate_rule(g)
  r.waiting = (r.waiting or 0) + 1
  rate_wake_at(g, at)
  gate_release({job})
end

-- The gate a job waits at (its SCHEDULED envelope `json` names it and it
-- is neither delayed nor at a concurrency gate), or nil.
local function rate_gate_in(json)
  if not json then return nil end
  local ok, env = pcall(cjson.decode, json)
  if ok and type(env) == 'table' and type(env[RATE_GATE_FIELD]) == 'string' then return env[RATE_GATE_FIELD], env end
  return nil
end

-- The promoter's look at gate `g`, whose wake is due: lets up to `most`
-- of its waiting go on (back to their streams, or to a concurrency gate),
-- as many as its limit has slots now, and sets its next wake while any
-- wait. A hold that has ended is removed. `on`: gating_on(). Returns how
-- many left the list.
local function rate_wake(g, now, most, on)
  redis.call('ZREM', RATE_WAKES, g)
  local r = rate_rule(g)
  if r.hold then
    if r.hold > now then
      redis.call('ZADD', RATE_WAKES, r.hold, g)
      return 0
    end
    redis.call('HDEL', RATES, 'hold:' .. g)
    r.hold = false
  end
  local list = rate_wait_list(g)
  local n = most
  if r.limit then
    local tat = rate_tat(g, r, now)
    n = math.min(most, math.floor((now + r.limit.tolerance - tat) / r.limit.t) + 1)
    if n <= 0 then
      if redis.call('EXISTS', list) == 1 then
        redis.call('ZADD', RATE_WAKES, math.ceil(tat - r.limit.tolerance), g)
      end
      return 0
    end
  end
  local moved = 0
  while moved < n do
    local job = redis.call('LPOP', list)
    if not job then break end
    local json = redis.call('HGET', SCHEDULED, job)
    local at, env = rate_gate_in(json)
    -- A job cancelled (or moved) since has no envelope naming this gate.
    if at == g then
      moved = moved + 1
      if gate_enter(on, job, env.type, env[CONCURRENCY_KEY_FIELD]) then
        redis.call('HDEL', SCHEDULED, job)
        add_envelope(job, json)
      end
    end
  end
  if redis.call('EXISTS', list) == 1 then
    -- Next when a slot frees after those let go now take theirs: so the
    -- burst never fills up while jobs wait, and a job claimed a little
    -- late costs the gate no slot.
    local next_at = now
    if r.limit then
      next_at = math.max(now + 1, math.ceil(rate_tat(g, r, now) + moved * r.limit.t - r.limit.tolerance))
    end
    redis.call('ZADD', RATE_WAKES, next_at, g)
  end
  return moved
end

-- The wakes due at `now` (at most 10 gates per call), each let go on by
-- rate_wake; returns how many jobs left the waits.
local function rate_wakes_due(now, most, on)
  local due = redis.call('ZRANGEBYSCORE', RATE_WAKES, '-inf', now, 'LIMIT', 0, 10)
  local moved = 0
  for _, g in ipairs(due) do moved = moved + rate_wake(g, now, most, on) end
  return moved
end
