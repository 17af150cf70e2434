-- reprioritise.lua: give a waiting job another priority, keeping its id.
-- KEYS: the four streams ... cancels (shared/queue.lua)
-- ARGV[1] group   ARGV[2] job id   ARGV[3] the new priority index (1-4)
-- Returns one of
--   {'moved', entry id}: it was queued; it is now the newest entry of the
--   new priority's stream (its old entry removed, INDEX updated), with its
--   `id` and `enqueued_at` fields;
--   {'moved', ''}: it was scheduled, retrying or waiting at a gate; it
--   will be queued at the new priority when due or let in;
--   {'same'}: it already has that priority;
--   {'not_waiting', state}: it is running or finished (state names which);
--   false: no such job.
local id = ARGV[2]
local to = tonumber(ARGV[3])
local target = STREAMS[to]
if not target then error('ferry: bad priority index ' .. tostring(ARGV[3])) end

-- Scheduled, retrying, or waiting at a concurrency or rate gate: the
-- envelope names the stream it goes to.
if redis.call('HEXISTS', SCHEDULED, id) == 1 then
  local json = redis.call('HGET', SCHEDULED, id)
  local ok, env = pcall(cjson.decode, json or '')
  if not (ok and type(env) == 'table') then return false end
  if env[PRIORITY_FIELD] == PRIORITIES[to] then return {'same'} end
  env[PRIORITY_FIELD] = PRIORITIES[to]
  redis.call('HSET', SCHEDULED, id, cjson.encode(env))
  return {'moved', ''}
end

local location = redis.call('HGET', INDEX, id) or id
local kind, entry_id = string.match(location, '^(%a+)%-(%d+%-%d+)$')
if kind == 'dead' then return {'not_waiting', 'dead'} end
local from = kind and PRIORITY_INDEX[kind]
if not from then
  if redis.call('HEXISTS', RESULTS, id) == 1 then return {'not_waiting', 'finished'} end
  return false
end
local stream = STREAMS[from]
local found = redis.pcall('XRANGE', stream, entry_id, entry_id)
if type(found) ~= 'table' or found.err or not found[1] then
  if redis.call('HEXISTS', RESULTS, id) == 1 then return {'not_waiting', 'finished'} end
  return false
end
local st = group_state(stream, GROUP)
if st then
  if redis.call('XPENDING', stream, GROUP, entry_id, entry_id, 1)[1] then
    return {'not_waiting', 'running'}
  end
  if st.last and not id_less(st.last, entry_id) then return {'not_waiting', 'finished'} end
end
if from == to then return {'same'} end
local fields = found[1][2]
-- An entry with hundreds of fields is not Ferry's: moving it could fail
-- half way (too many values to unpack), after its removal.
if #fields > 200 then return {'not_waiting', 'malformed'} end
local out = {}
if not field_in(fields, 1, 'id') then
  out[1], out[2] = 'id', id
end
if not field_in(fields, 1, 'enqueued_at') then
  out[#out + 1] = 'enqueued_at'
  out[#out + 1] = entry_ms(entry_id)
end
for i = 1, #fields do out[#out + 1] = fields[i] end
-- Removed first (under maxmemory only a script's first write may be refused).
redis.call('XDEL', stream, entry_id)
local new_id = redis.call('XADD', target, '*', unpack(out))
redis.call('HSET', INDEX, id, derived_id(PRIORITIES[to], new_id))
return {'moved', new_id}
