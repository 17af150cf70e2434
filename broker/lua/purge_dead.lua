-- purge_dead.lua: delete the oldest dead letters, and their jobs' INDEX fields.
-- KEYS: the four streams ... index (shared/queue.lua)
-- ARGV[1] group (unused)   ARGV[2] most entries to delete in this call
-- Returns how many entries it deleted (0 when DEAD is empty).
local old = redis.call('XRANGE', DEAD, '-', '+', 'COUNT', tonumber(ARGV[2]))
if #old == 0 then return 0 end
local ids, jobs = {}, {}
for _, e in ipairs(old) do
  ids[#ids + 1] = e[1]
  local job = field_in(e[2], 1, 'id')
  if job and redis.call('HGET', INDEX, job) == 'dead-' .. e[1] then jobs[#jobs + 1] = job end
end
if #jobs > 0 then redis.call('HDEL', INDEX, unpack(jobs)) end
return redis.call('XDEL', DEAD, unpack(ids))
