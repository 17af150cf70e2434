-- promote.lua: move due jobs from the delayed set into their priority streams.
-- KEYS: the four streams ... retention (shared/queue.lua)
-- ARGV[1] group (unused)   ARGV[2] most members to move in this call
-- Returns {moved, next, now, events, records}: next is the run-at (ms) of the
-- earliest job still delayed, or -1 when the set is empty; now is the
-- server's time (ms), which decided what was due (shared/clock.lua), for
-- the caller's sleep; events is the queue's events cap (0: off), which
-- workers use for the events they write themselves (started); records is
-- 1 when the queue keeps finished jobs' records (workers build a record's
-- fields only then).
-- A member is a job id whose envelope (JSON) is its SCHEDULED value; a
-- member that is itself a JSON object is an envelope written before
-- version 0.6, promoted the same way. The new entry carries the job's id,
-- and INDEX points the id at it. Anything that is not an envelope goes to
-- the normal stream as an entry with one field, RAW_FIELD, so a worker
-- dead-letters it with a reason. It also removes up to 100 expired
-- records (shared/records.lua).
local now = server_now_ms()
local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  -- Removed first: under maxmemory (noeviction) Redis refuses a script's
  -- first write that may grow memory, but not the writes after one, so
  -- due jobs still move while Redis is full (see retry.lua).
  redis.call('ZREM', DELAYED, member)
  local json, job = member, nil
  if string.sub(member, 1, 1) ~= '{' then
    job = member
    json = redis.call('HGET', SCHEDULED, member)
    redis.call('HDEL', SCHEDULED, member)
  end
  local ok, env = false, nil
  if json then ok, env = pcall(cjson.decode, json) end
  if ok and type(env) == 'table' then
    local fields = {}
    for _, name in ipairs(ENVELOPE_FIELDS) do
      local v = env[name]
      if name == 'id' and job and type(v) ~= 'string' then v = job end
      if type(v) == 'string' or type(v) == 'number' then
        fields[#fields + 1] = name
        fields[#fields + 1] = v
      end
    end
    if #fields == 0 then fields = {RAW_FIELD, json} end
    local priority = env[PRIORITY_FIELD]
    if not PRIORITY_INDEX[priority] then priority = PRIORITIES[DEFAULT_PRIORITY] end
    local eid = redis.call('XADD', stream_of(priority), '*', unpack(fields))
    local id = env.id
    if type(id) ~= 'string' then id = job end
    if id then redis.call('HSET', INDEX, id, derived_id(priority, eid)) end
  else
    local raw = json or ('the scheduled job ' .. member .. ' has no envelope')
    redis.call('XADD', STREAMS[DEFAULT_PRIORITY], '*', RAW_FIELD, raw)
  end
end
-- Records expire here too, a few per call, so an idle queue's go.
expire_records(now, 100)
local first = redis.call('ZRANGE', DELAYED, 0, 0, 'WITHSCORES')
local next_at = -1
if first[2] then next_at = tonumber(first[2]) end
local keep_ms, keep_n = retention()
local records = 0
if keep_ms > 0 and keep_n > 0 then records = 1 end
return {#due, next_at, now, events_cap(), records}
