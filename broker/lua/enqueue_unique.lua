-- enqueue_unique.lua: one job under a uniqueness key: written only if no
-- live job holds the key, else the holder's id is returned.
-- KEYS: the queue's keys up to events (shared/queue.lua), then KEYS[18]
-- the locks P:{Q}:unique (field = key, value = '<lifetime>:<job id>') and
-- KEYS[19] P:{Q}:unique_expiry (member = key, score = when to look at it
-- again, ms: a throttle's end, else an hour on, to drop locks whose job
-- ended).
-- ARGV[1] group   ARGV[2] the key   ARGV[3] lifetime: 'started' (held
-- while the job waits for its first start), 'finished' (until it ends in
-- any way), 'ttl' (throttle: for ARGV[4] ms from the first enqueue,
-- whatever the job does), 'debounce' (held while the job is delayed; a
-- duplicate replaces its payload and restarts its ARGV[4] ms delay)
-- ARGV[4] ms (ttl, debounce)   ARGV[5] the new job's id   ARGV[6] priority
-- index (1-4)   ARGV[7] type   ARGV[8] payload   ARGV[9] max_retries
-- ARGV[10] delay in ms ('0' for now; debounce: ARGV[4])
-- ARGV[11] the job's concurrency key ('' or absent for none)
-- A lock is never trusted alone: its holder is looked up (delayed set,
-- INDEX), so a job that ended in any way (succeeded, dead, cancelled,
-- purged, its entry deleted by hand) frees its key at once.
-- Returns {'ok', id}, {'duplicate', holder id}, {'debounced', holder id}
-- or {'full', depth, max}.
local LOCKS, EXPIRY = KEYS[18], KEYS[19]
local RECHECK_MS = 3600000
local key, lifetime, ms = ARGV[2], ARGV[3], tonumber(ARGV[4])
local now = server_now_ms()

-- The state of job `id`: 'scheduled' (delayed, first attempt), 'retrying'
-- (delayed, later attempt), 'queued', 'running', or nil (ended or gone).
local function state_of(id)
  if redis.call('ZSCORE', DELAYED, id) then
    local env = redis.call('HGET', SCHEDULED, id)
    local ok, e = pcall(cjson.decode, env or '')
    if ok and type(e) == 'table' and tostring(e.attempt) ~= '1' then return 'retrying' end
    return 'scheduled'
  end
  local loc = redis.call('HGET', INDEX, id)
  if not loc then
    -- Waiting at a concurrency gate: queued, for the locks.
    if redis.call('HEXISTS', SCHEDULED, id) == 1 then return 'queued' end
    return nil
  end
  local kind, eid = string.match(loc, '^(%a+)%-(.+)$')
  local index = kind and PRIORITY_INDEX[kind]
  if not index then return nil end -- dead-<entry>
  local stream = STREAMS[index]
  local found = redis.pcall('XRANGE', stream, eid, eid)
  if type(found) ~= 'table' or found.err or not found[1] then return nil end
  local st = group_state(stream, GROUP)
  if not st then return 'queued' end
  if redis.call('XPENDING', stream, GROUP, eid, eid, 1)[1] then return 'running' end
  if st.last and id_less(st.last, eid) then return 'queued' end
  return nil -- delivered, no longer pending: ended (its entry not yet trimmed)
end

-- Whether the lock `value` ('<lifetime>:<id>') still holds, with its
-- holder's id.
local function holds(value, expiry)
  local life, id = string.match(value or '', '^(%a+):(.+)$')
  if not id then return false end
  if life == 'ttl' then return (expiry or 0) > now, id end
  local st = state_of(id)
  if life == 'finished' then return st ~= nil, id end
  if life == 'debounce' then return st == 'scheduled', id end
  return st == 'scheduled' or st == 'queued', id
end

-- Drop up to 16 locks due a look whose holder no longer holds them.
local due = redis.call('ZRANGEBYSCORE', EXPIRY, '-inf', now, 'LIMIT', 0, 16)
for _, k in ipairs(due) do
  local value = redis.call('HGET', LOCKS, k)
  local held = value and value:sub(1, 4) ~= 'ttl:' and holds(value, nil)
  if held then
    redis.call('ZADD', EXPIRY, now + RECHECK_MS, k)
  else
    redis.call('HDEL', LOCKS, k)
    redis.call('ZREM', EXPIRY, k)
  end
end

local held, holder = holds(redis.call('HGET', LOCKS, key), tonumber(redis.call('ZSCORE', EXPIRY, key)))
local index = tonumber(ARGV[6])
local priority = PRIORITIES[index]
if not priority then error('ferry: bad priority index ' .. tostring(ARGV[6])) end
local ckey = ARGV[11]
if ckey == '' then ckey = nil end
local function envelope(id)
  return cjson.encode({id = id, type = ARGV[7], payload = ARGV[8], attempt = '1',
    max_retries = ARGV[9], enqueued_at = tostring(now), priority = priority,
    [CONCURRENCY_KEY_FIELD] = ckey})
end
if held then
  if lifetime == 'debounce' and state_of(holder) == 'scheduled' then
    redis.call('HSET', SCHEDULED, holder, envelope(holder))
    redis.call('ZADD', DELAYED, now + ms, holder)
    return {'debounced', holder}
  end
  return {'duplicate', holder}
end

local full = past_max_depth(1, max_depth_setting())
if full then return full end

local id = ARGV[5]
local delay = tonumber(ARGV[10]) or 0
if delay > 0 then
  redis.call('ZADD', DELAYED, now + delay, id)
  redis.call('HSET', SCHEDULED, id, envelope(id))
else
  -- Under a concurrency limit with no free slot it waits at its gate
  -- (shared/gates.lua).
  local fields = {'id', id, 'type', ARGV[7], 'payload', ARGV[8], 'attempt', '1',
    'max_retries', ARGV[9], 'enqueued_at', now}
  if ckey then
    fields[#fields + 1] = CONCURRENCY_KEY_FIELD
    fields[#fields + 1] = ckey
  end
  enter_stream(gating_on(), id, priority, fields, ARGV[7], ckey)
end
redis.call('HSET', LOCKS, key, lifetime .. ':' .. id)
if lifetime == 'ttl' then
  redis.call('ZADD', EXPIRY, now + ms, key)
else
  redis.call('ZADD', EXPIRY, now + RECHECK_MS, key)
end
emit(events_cap(), 'enqueued', {id}, {})
return {'ok', id}
