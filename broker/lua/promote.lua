-- promote.lua: move due jobs from the delayed set into their priority streams.
-- KEYS: the four streams, stats, delayed (shared/queue.lua)
-- ARGV[1] group (unused)   ARGV[2] now (ms)   ARGV[3] most members to move in this call
-- Returns {moved, next}: next is the run-at (ms) of the earliest job still
-- delayed, or -1 when the set is empty.
-- A member that is not an envelope JSON object goes to the normal stream as
-- an entry with one field, RAW_FIELD, so a worker dead-letters it with a reason.
local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
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
  redis.call('ZREM', DELAYED, member)
end
local first = redis.call('ZRANGE', DELAYED, 0, 0, 'WITHSCORES')
local next_at = -1
if first[2] then next_at = tonumber(first[2]) end
return {#due, next_at}
