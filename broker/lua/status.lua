-- status.lua: where a job is, by id (reads only).
-- KEYS: the four streams ... retention (shared/queue.lua)
-- ARGV[1] group   ARGV[2] job id
-- Returns false when no job has that id (or its record expired), else one of
--   {'finished', record JSON}
--   {'dead', dead-letter entry id, {field, value, ...}}
--   {'scheduled', run-at ms, envelope JSON or false}
--   {'gated', gate, envelope JSON or false, the gate's limit (0: none now),
--    its slots held}: waiting for a slot of a concurrency limit
--    (shared/gates.lua; gate 'key:<K>' or 'type:<T>')
--   {'rate_limited', gate, envelope JSON, the gate's limit ('<n> <period
--    ms> <burst>', '' for none: a hold), when its next slot is (server
--    ms), how many wait there}: parked at a rate gate (shared/rates.lua)
--   {'deps', envelope JSON, the first 50 ids of the dependencies it still
--    waits for (sorted), how many}: waiting for dependencies (shared/deps.lua)
--   {'queued', priority index, entry id, {field, value, ...}, held back
--    ('paused', 'concurrency', 'held', 'rate' or '': why no job of the
--    queue starts now), ms until one may (held, rate)}
--   {'running', priority index, entry id, {field, value, ...}, consumer,
--    deliveries, ms since its lease was last renewed, progress JSON or ''}
--   {'paused'} is not a state: the caller reads the settings for that.
-- A record past its expiry counts as gone, though not trimmed yet.
-- Look-up is O(1) in the hashes and O(log n) in a stream: a fresh job's id
-- names its entry ('<priority>-<entry id>'); any other job's entry or dead
-- letter is named by INDEX.
local id = ARGV[2]
local now = server_now_ms()

-- Why no job of the queue starts now, if so: 'paused', 'concurrency'
-- (the queue's limit is reached), 'held' (a handler's hold) or 'rate' (its
-- rate limit has no slot free), else ''; and for the last two, the ms
-- until one may (as the claim computes them).
local function held_back()
  local paused, limit, tat, held, concurrency = claim_settings()
  if paused then return 'paused', 0 end
  if concurrency_allowance(1, concurrency) <= 0 then return 'concurrency', 0 end
  local want, wait = rate_allowance(1, limit, tat, held)
  if want <= 0 then
    if tonumber(held) and tonumber(held) > now then return 'held', wait end
    return 'rate', wait
  end
  return '', 0
end

-- The job in entry `entry_id` of stream `index`: running (pending), queued
-- (not yet delivered), or nil: no such entry, or one delivered and no
-- longer pending (finished; the bulk trim keeps some such entries a while).
local function in_stream(index, entry_id)
  local stream = STREAMS[index]
  local found = redis.pcall('XRANGE', stream, entry_id, entry_id)
  if type(found) ~= 'table' or found.err or not found[1] then return nil end
  local e = found[1]
  local st = group_state(stream, GROUP)
  if st then
    local p = redis.call('XPENDING', stream, GROUP, entry_id, entry_id, 1)
    if p[1] then
      local progress = redis.call('HGET', PROGRESS, id) or ''
      return {'running', index, entry_id, e[2], p[1][2], p[1][4], p[1][3], progress}
    end
    if st.last and not id_less(st.last, entry_id) then return nil end
  end
  return {'queued', index, entry_id, e[2], held_back()}
end

local function at(location)
  local kind, entry_id = string.match(location, '^(%a+)%-(%d+%-%d+)$')
  if not kind then return nil end
  if kind == 'dead' then
    local e = redis.call('XRANGE', DEAD, entry_id, entry_id)[1]
    if e then return {'dead', entry_id, e[2]} end
    return nil
  end
  local index = PRIORITY_INDEX[kind]
  if index then return in_stream(index, entry_id) end
  return nil
end

local record = redis.call('HGET', RESULTS, id)
if record then
  -- Expired but not trimmed yet (trims run a few at a time): gone.
  local expires = tonumber(redis.call('ZSCORE', RETENTION, id))
  if expires and expires <= now then return false end
  return {'finished', record}
end
local location = redis.call('HGET', INDEX, id)
if location then
  local found = at(location)
  if found then return found end
end
local due = redis.call('ZSCORE', DELAYED, id)
if due then return {'scheduled', due, redis.call('HGET', SCHEDULED, id)} end
local gate = gate_waiting_at(id)
if gate then
  local limit = gate_limit(gate)
  return {'gated', gate, redis.call('HGET', SCHEDULED, id), limit or 0, tonumber(redis.call('HGET', GATES, gate)) or 0}
end
-- Parked at a rate gate (shared/rates.lua): its envelope names the gate.
local json = redis.call('HGET', SCHEDULED, id)
local rate_gate = rate_gate_in(json)
if rate_gate then
  local limit = redis.call('HGET', RATES, rate_gate)
  if not limit and string.sub(rate_gate, 1, 4) == 'key:' then limit = redis.call('HGET', RATES, 'key') end
  local _, next_at = rate_check(rate_gate, now)
  return {'rate_limited', rate_gate, json, limit or '', next_at or now, redis.call('LLEN', rate_wait_list(rate_gate))}
end
-- Waiting for its dependencies (shared/deps.lua).
if json and redis.call('EXISTS', deps_of(id)) == 1 then
  local deps = redis.call('SMEMBERS', deps_of(id))
  table.sort(deps)
  return {'deps', json, {unpack(deps, 1, math.min(#deps, 50))}, #deps}
end
if not location then
  local found = at(id)
  if found then return found end
end
return false
