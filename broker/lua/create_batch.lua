-- create_batch.lua: a batch (shared/batches.lua): its jobs, written all
-- or none, and its callbacks, kept until they are due.
-- KEYS: the four streams ... events (shared/queue.lua)
-- ARGV[1] group   ARGV[2] the batch's id   ARGV[3] its description
-- ARGV[4] the on-success callback's job, JSON ({id, type, payload,
-- priority, max_retries, retention_ms?, concurrency_key?}; '' for none)
-- ARGV[5] the on-complete callback's job ('' for none)
-- ARGV[6] n, the number of jobs (1 or more); then each job's fields
-- (shared/enqueue_jobs.lua).
-- Returns {'ok', w1, ..., wn} (as enqueue_after.lua), {'batch_exists',
-- id}, or read_jobs's error reply; nothing is written unless 'ok'.
local now = server_now_ms()
local b = ARGV[2]
local key = batch_key(b)
if redis.call('EXISTS', key) == 1 then return {'batch_exists', b} end
local reserved, callbacks = {}, {}
for i, name in ipairs({'on_success', 'on_complete'}) do
  local json = ARGV[3 + i]
  if json ~= '' then
    local ok, env = pcall(cjson.decode, json)
    if not ok or type(env) ~= 'table' or type(env.id) ~= 'string' then return {'bad_callback', name} end
    if reserved[env.id] or id_in_use(env.id, now) then return {'duplicate', env.id} end
    reserved[env.id] = true
    callbacks[#callbacks + 1] = {name, env.id, json}
  end
end
local jobs, err = read_jobs(7, tonumber(ARGV[6]) or 0, now, reserved)
if not jobs then return err end
if #jobs == 0 then return {'empty'} end

-- The batch first: under maxmemory a script's first write that may grow
-- memory is the one Redis refuses.
local fields = {'total', #jobs, 'succeeded', 0, 'failed', 0, 'created_at', now}
if ARGV[3] ~= '' then
  fields[#fields + 1] = 'description'
  fields[#fields + 1] = ARGV[3]
end
for _, cb in ipairs(callbacks) do
  fields[#fields + 1] = cb[1]
  fields[#fields + 1] = cb[2]
  fields[#fields + 1] = cb[1] .. '_job'
  fields[#fields + 1] = cb[3]
end
redis.call('HSET', key, unpack(fields))
-- Batches whose keys expired leave the list, a few at a time.
for _, old in ipairs(redis.call('ZRANGE', BATCHES, 0, 9)) do
  if redis.call('EXISTS', batch_key(old)) == 0 then redis.call('ZREM', BATCHES, old) end
end
redis.call('ZADD', BATCHES, now, b)
local reply, ids = write_jobs(jobs, now, {[BATCH_FIELD] = b})
batch_join(b, ids)
emit(events_cap(), 'enqueued', ids, {})
return reply
