-- promote.lua: move due jobs from the delayed set into their priority streams.
-- KEYS[1] delayed zset   KEYS[2..5] the critical, high, normal and low streams
-- ARGV[1] now (ms)       ARGV[2] most members to move in this call
-- Returns {moved, next}: next is the run-at (ms) of the earliest job still
-- delayed, or -1 when the set is empty.
-- A member that is not an envelope JSON object goes to the normal stream as
-- an entry with one field, 'raw', so a worker dead-letters it with a reason.
local delayed = KEYS[1]
local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local index = {critical = 2, high = 3, normal = 4, low = 5}
local order = {'id', 'type', 'payload', 'attempt', 'max_retries', 'enqueued_at', 'last_error'}
for _, member in ipairs(due) do
  local ok, env = pcall(cjson.decode, member)
  if ok and type(env) == 'table' then
    local fields = {}
    for _, name in ipairs(order) do
      local v = env[name]
      if type(v) == 'string' or type(v) == 'number' then
        fields[#fields + 1] = name
        fields[#fields + 1] = v
      end
    end
    if #fields == 0 then fields = {'raw', member} end
    redis.call('XADD', KEYS[index[env.priority] or 4], '*', unpack(fields))
  else
    redis.call('XADD', KEYS[4], '*', 'raw', member)
  end
  redis.call('ZREM', delayed, member)
end
local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
local next_at = -1
if first[2] then next_at = tonumber(first[2]) end
return {#due, next_at}
