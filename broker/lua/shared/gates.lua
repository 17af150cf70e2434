-- shared/gates.lua (needs names.lua and admit.lua): concurrency limits by
-- a job's concurrency key and by its type, kept as admission to the
-- priority streams (see docs/architecture.md, "Concurrency limits").
--
-- A gate is 'key:<K>' (the jobs with concurrency key K) or 'type:<T>' (the
-- jobs of type T) that has a limit. A job under gates enters its priority
-- stream only once it holds a slot of each (its key's first, then its
-- type's); until then it waits at the first gate it could not pass, its id
-- in that gate's list and its envelope in SCHEDULED. It holds its slots
-- from then until it ends in any way, goes back to the delayed set for a
-- retry, or is cancelled; each slot freed lets the oldest job waiting at
-- that gate go on. So the streams never hold more of a key's jobs than its
-- limit: workers claim as always, and nothing is claimed only to be put
-- back. The keys, all under the queue's hash tag (names built from
-- SETTINGS'):
--   P:{Q}:limits  hash: 'type:<T>' -> n, 'key:<K>' -> n, 'key' -> n (every
--                 key's limit where it has none of its own)
--   P:{Q}:gates   hash: gate -> slots held
--   P:{Q}:gated   hash: job id -> '<slots held>\n<gate>[\n<gate>]', while
--                 the job waits at a gate or holds a slot
--   P:{Q}:gate:<gate>  list: the ids of the jobs waiting there, oldest first
local LIMITS = QUEUE_BASE .. 'limits'
local GATES = QUEUE_BASE .. 'gates'
local GATED = QUEUE_BASE .. 'gated'

-- The list of the jobs waiting at gate `g`.
local function gate_list(g)
  return QUEUE_BASE .. 'gate:' .. g
end

-- True when the queue has a concurrency limit of a type or key (one call:
-- scripts that admit jobs ask once).
local function gating_on()
  return redis.call('EXISTS', LIMITS) == 1
end

-- The limits read by this call, by gate (false: none): a script runs
-- alone, so a limit read once holds for the whole call.
local gate_limits = {}

-- The limit of gate `g` (a key's own, else every key's), or nil.
local function gate_limit(g)
  local known = gate_limits[g]
  if known ~= nil then return known or nil end
  local n = redis.call('HGET', LIMITS, g)
  if not n and string.sub(g, 1, 4) == 'key:' then n = redis.call('HGET', LIMITS, 'key') end
  n = tonumber(n)
  if not (n and n > 0) then n = false end
  gate_limits[g] = n
  return n or nil
end

-- The gates of a job of type `t` with concurrency key `k` (nil or '' for
-- none): its key's, then its type's, those that have a limit.
local function gates_of(t, k)
  local out = {}
  if type(k) == 'string' and k ~= '' and gate_limit('key:' .. k) then out[#out + 1] = 'key:' .. k end
  if type(t) == 'string' and gate_limit('type:' .. t) then out[#out + 1] = 'type:' .. t end
  return out
end

-- The slots held and the gates of a GATED value.
local function gate_record(rec)
  local held, gates = nil, {}
  for part in string.gmatch(rec, '[^\n]+') do
    if held then gates[#gates + 1] = part else held = tonumber(part) or 0 end
  end
  return held or 0, gates
end

-- Takes the job's slots from gate `held + 1` on. Returns true when it
-- holds them all (the caller adds it to its stream); else it waits at the
-- gate it could not pass: at the end of that gate's list, or at its head
-- when `first` is that gate (the job was first in line there and stays so).
-- A gate whose limit was removed since is passed, its slot counted all the
-- same (so its release balances).
local function gate_take(job, held, gates, first)
  while held < #gates do
    local g = gates[held + 1]
    local limit = gate_limit(g)
    if limit then
      local running = tonumber(redis.call('HGET', GATES, g)) or 0
      local blocked = running >= limit
      if not blocked and g ~= first then blocked = redis.call('LLEN', gate_list(g)) > 0 end
      if blocked then
        if g == first then
          redis.call('LPUSH', gate_list(g), job)
        else
          redis.call('RPUSH', gate_list(g), job)
        end
        redis.call('HSET', GATED, job, held .. '\n' .. table.concat(gates, '\n'))
        return false
      end
    end
    redis.call('HINCRBY', GATES, g, 1)
    held = held + 1
  end
  redis.call('HSET', GATED, job, held .. '\n' .. table.concat(gates, '\n'))
  return true
end

-- Lets up to `most` jobs waiting at gate `g` go on while it has free
-- slots: each takes its slot there, then its next gate's or enters its
-- stream (from its envelope in SCHEDULED). Returns how many left the list.
local function gate_drain(g, most)
  local list = gate_list(g)
  local moved = 0
  while moved < most do
    local limit = gate_limit(g)
    if limit and (tonumber(redis.call('HGET', GATES, g)) or 0) >= limit then break end
    local job = redis.call('LPOP', list)
    if not job then break end
    moved = moved + 1
    local rec = redis.call('HGET', GATED, job)
    if rec then
      local held, gates = gate_record(rec)
      if gates[held + 1] == g and gate_take(job, held, gates, g) then
        add_envelope(job, redis.call('HGET', SCHEDULED, job))
        redis.call('HDEL', SCHEDULED, job)
      end
    end
  end
  return moved
end

-- A new or promoted job about to enter its priority stream: true when it
-- may (no gate, or a slot of each); false when it waits at a gate (the
-- caller keeps its envelope in SCHEDULED). `on`: gating_on(), asked once.
local function gate_enter(on, job, t, k)
  if not on then return true end
  local gates = gates_of(t, k)
  if #gates == 0 then return true end
  return gate_take(job, 0, gates, nil)
end

-- Frees what the jobs `ids` hold (they ended, go back to the delayed set,
-- or are cancelled): their slots, or their place at a gate, and their
-- GATED value; each slot freed lets the next job waiting at its gate go
-- on. One HLEN when no job of the queue is under a limit.
local function gate_release(ids)
  if #ids == 0 or redis.call('HLEN', GATED) == 0 then return end
  -- Slots freed by gate, released and drained once per gate.
  local freed, order = {}, {}
  for from = 1, #ids, 1000 do
    local part = {unpack(ids, from, math.min(from + 999, #ids))}
    local recs = redis.call('HMGET', GATED, unpack(part))
    local gone = {}
    for i, rec in ipairs(recs) do
      if rec then
        local held, gates = gate_record(rec)
        if held < #gates then redis.call('LREM', gate_list(gates[held + 1]), 1, part[i]) end
        for j = 1, held do
          local g = gates[j]
          if not freed[g] then order[#order + 1] = g end
          freed[g] = (freed[g] or 0) + 1
        end
        gone[#gone + 1] = part[i]
      end
    end
    if #gone > 0 then redis.call('HDEL', GATED, unpack(gone)) end
  end
  for _, g in ipairs(order) do
    if redis.call('HINCRBY', GATES, g, -freed[g]) <= 0 then redis.call('HDEL', GATES, g) end
    if redis.call('EXISTS', gate_list(g)) == 1 then gate_drain(g, freed[g]) end
  end
end

-- The gate job `job` waits at, or nil (it holds its slots, or is under none).
local function gate_waiting_at(job)
  local rec = redis.call('HGET', GATED, job)
  if not rec then return nil end
  local held, gates = gate_record(rec)
  return gates[held + 1]
end

-- Adds job `job` (`fields`: its entry's fields, `id` among them) to the
-- stream of `priority` (a name), or, under a concurrency limit with no
-- free slot, to the wait at its gate, its envelope in SCHEDULED. INDEX
-- points the id at its entry. Returns the entry id, or false when it
-- waits. `on`: gating_on(), asked once.
local function enter_stream(on, job, priority, fields, t, k)
  if on then
    local gates = gates_of(t, k)
    if #gates > 0 and not gate_take(job, 0, gates, nil) then
      local env = {[PRIORITY_FIELD] = priority}
      for j = 1, #fields - 1, 2 do env[fields[j]] = tostring(fields[j + 1]) end
      redis.call('HSET', SCHEDULED, job, cjson.encode(env))
      return false
    end
  end
  local eid = redis.call('XADD', stream_of(priority), '*', unpack(fields))
  redis.call('HSET', INDEX, job, derived_id(priority, eid))
  return eid
end
