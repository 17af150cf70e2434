-- cancel.lua: cancel a job by id.
-- KEYS: the four streams ... cancels (shared/queue.lua)
-- ARGV[1] group   ARGV[2] job id
-- Returns one of
--   {'cancelled'}: it was scheduled, retrying or queued; it is removed
--   (atomically) and recorded cancelled;
--   {'cancelling', worker}: it is running: the request is kept in CANCELS
--   and published on P:{Q}:cancel, whose subscriber on that worker fires
--   the job's cancellation token; the job ends cancelled when its attempt
--   ends, whatever the handler returns;
--   {'final', state}: it has finished already (succeeded, dead, or
--   cancelled: cancelling again changes nothing);
--   false: no such job.
local id = ARGV[2]
local now = server_now_ms()

if has_record(id, now) then
  local ok, rec = pcall(cjson.decode, redis.call('HGET', RESULTS, id))
  local state = (ok and type(rec) == 'table' and rec.state) or 'succeeded'
  return {'final', state}
end

-- Scheduled or retrying.
if redis.call('ZSCORE', DELAYED, id) then
  -- Its record has what its envelope says (no attempt of it runs now).
  local ok, env = pcall(cjson.decode, redis.call('HGET', SCHEDULED, id) or '')
  local members = ''
  if ok and type(env) == 'table' then
    members = record_members(function(name) return env[name] end, env.priority, nil, nil)
  end
  redis.call('ZREM', DELAYED, id)
  redis.call('HDEL', SCHEDULED, id)
  record_cancelled({id}, {members}, now)
  return {'cancelled'}
end

-- Waiting at a concurrency gate (shared/gates.lua): out of its list.
if gate_waiting_at(id) then
  local ok, env = pcall(cjson.decode, redis.call('HGET', SCHEDULED, id) or '')
  local members = ''
  if ok and type(env) == 'table' then
    members = record_members(function(name) return env[name] end, env.priority, nil, nil)
  end
  gate_release({id})
  redis.call('HDEL', SCHEDULED, id)
  record_cancelled({id}, {members}, now)
  return {'cancelled'}
end

-- Parked at a rate gate (shared/rates.lua): out of its wait list.
local rate_gate, env = rate_gate_in(redis.call('HGET', SCHEDULED, id))
if rate_gate then
  local members = record_members(function(name) return env[name] end, env.priority, nil, nil)
  redis.call('LREM', rate_wait_list(rate_gate), 1, id)
  redis.call('HDEL', SCHEDULED, id)
  record_cancelled({id}, {members}, now)
  return {'cancelled'}
end

-- Waiting for its dependencies (shared/deps.lua).
if redis.call('EXISTS', deps_of(id)) == 1 then
  local env = dep_envelope(id) or {}
  local members = record_members(function(name) return env[name] end, env.priority, nil, nil)
  redis.call('HDEL', SCHEDULED, id)
  redis.call('DEL', deps_of(id))
  record_cancelled({id}, {members}, now)
  return {'cancelled'}
end

-- In a stream: named by the index, or by a fresh job's id.
local location = redis.call('HGET', INDEX, id) or id
local kind, entry_id = string.match(location, '^(%a+)%-(%d+%-%d+)$')
if kind == 'dead' then
  if #redis.call('XRANGE', DEAD, entry_id, entry_id) > 0 then return {'final', 'dead'} end
  return false
end
local index = kind and PRIORITY_INDEX[kind]
if not index then return false end
local stream = STREAMS[index]
local found = redis.pcall('XRANGE', stream, entry_id, entry_id)
if type(found) ~= 'table' or found.err or not found[1] then return false end
local st = group_state(stream, GROUP)
if st then
  local p = redis.call('XPENDING', stream, GROUP, entry_id, entry_id, 1)
  if p[1] then
    if redis.call('HEXISTS', CANCELS, id) == 1 then return {'cancelling', ''} end
    redis.call('HSET', CANCELS, id, now)
    local channel = QUEUE_BASE .. 'cancel'
    redis.call('PUBLISH', channel, id)
    return {'cancelling', p[1][2]}
  end
  -- Delivered and no longer pending: finished (its record not kept).
  if st.last and not id_less(st.last, entry_id) then return {'final', 'succeeded'} end
end
-- Queued: removed before any worker takes it; its concurrency slots free.
redis.call('XDEL', stream, entry_id)
gate_release({id})
record_cancelled({id}, {entry_record(found[1][2], 1, entry_id, PRIORITIES[index], nil, nil)}, now)
return {'cancelled'}
