-- promote.lua: move due jobs from the delayed set into their priority streams.
-- KEYS: the four streams, stats, delayed (shared/queue.lua)
-- ARGV[1] group (unused)   ARGV[2] most members to move in this call
-- Returns {moved, next, now}: next is the run-at (ms) of the earliest job
-- still delayed, or -1 when the set is empty; now is the server's time (ms),
-- which decided what was due (shared/clock.lua), for the caller's sleep.
-- A member that is not an envelope JSON object goes to the normal stream as
-- an entry with one field, RAW_FIELD, so a worker dead-letters it with a reason.
local now = server_now_ms()
local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  -- Removed first: under maxmemory (noeviction) Redis refuses a script's
  -- first write that may grow memory, but not the writes after one, so
  -- due jobs still move while Redis is full (see retry.lua).
  redis.call('ZREM', DELAYED, member)
  local ok, env = pcall(cjson.decode, member)
  if ok and type(env) == 'table' then
    local fields = {}
    for _, name in ipairs(ENVELOPE_FIELDS) do
      local v = env[name]
      if type(v) == 'string' or type(v) == 'number' then
        fields[#fields + 1] = name
        fields[#fields + 1] = v
      end
    end
    if #fields == 0 then fields = {RAW_FIELD, member} end
    redis.call('XADD', stream_of(env[PRIORITY_FIELD]), '*', unpack(fields))
  else
    redis.call('XADD', STREAMS[DEFAULT_PRIORITY], '*', RAW_FIELD, member)
  end
end
local first = redis.call('ZRANGE', DELAYED, 0, 0, 'WITHSCORES')
local next_at = -1
if first[2] then next_at = tonumber(first[2]) end
return {#due, next_at, now}
