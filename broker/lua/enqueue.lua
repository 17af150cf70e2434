-- enqueue.lua: one chunk of new jobs, checked and written at once.
-- KEYS: the four streams ... retention (shared/queue.lua), then, for a batch
-- under an idempotency key, KEYS[13] its hash P:{Q}:batch:<key> (field =
-- chunk number)
-- ARGV[1] group   ARGV[2] on a duplicate id: 'error' or 'existing'
-- ARGV[3] chunk number   ARGV[4] the batch hash's TTL (ms)
-- ARGV[5..] the jobs, each either
--   's', priority index (1-4), job id ('' for a fresh id), n, then n
--   field/value pairs: XADD to that stream
--   'd', run-at (ms), job id, envelope JSON: into the delayed set
-- Returns one of
--   {'ok', ids, existing}: ids of the jobs in order (a fresh job's id is
--   '<priority>-<entry id>', see names.lua); existing lists the positions
--   (from 1) of jobs not written because their id already exists;
--   {'done'}: the chunk was written before (KEYS[13] says so);
--   {'duplicate', id}: a given id exists (ARGV[2] 'error'); nothing written;
--   {'full', depth, max}: the chunk would take the queue past the
--   max_depth setting; nothing written.
-- An id exists while its job is scheduled, queued, running, dead-lettered
-- or has a record. Depth counts jobs waiting, running and delayed.
local marker = KEYS[13]
if marker and redis.call('HEXISTS', marker, ARGV[3]) == 1 then return {'done'} end
local on_duplicate = ARGV[2]

local function exists(id)
  return redis.call('HEXISTS', INDEX, id) == 1 or redis.call('ZSCORE', DELAYED, id)
    or redis.call('HEXISTS', RESULTS, id) == 1
end

-- Pass 1: parse, and check ids, before anything is written.
local jobs, seen, existing = {}, {}, {}
local i = 5
while i <= #ARGV do
  local tag = ARGV[i]
  local job
  if tag == 's' then
    local n = tonumber(ARGV[i + 3])
    job = {tag = 's', stream = stream_at(ARGV[i + 1]), priority = PRIORITIES[tonumber(ARGV[i + 1])],
      id = ARGV[i + 2], from = i + 4, n = n}
    i = i + 4 + 2 * n
  elseif tag == 'd' then
    job = {tag = 'd', at = ARGV[i + 1], id = ARGV[i + 2], env = ARGV[i + 3]}
    i = i + 4
  else
    error('ferry: bad job tag ' .. tostring(tag))
  end
  if job.id ~= '' and (seen[job.id] or exists(job.id)) then
    if on_duplicate ~= 'existing' then return {'duplicate', job.id} end
    job.skip = true
    existing[#existing + 1] = #jobs + 1
  end
  if job.id ~= '' then seen[job.id] = true end
  jobs[#jobs + 1] = job
end

local max_depth = tonumber(redis.call('HGET', SETTINGS, 'max_depth'))
if max_depth and max_depth > 0 then
  local adding = #jobs - #existing
  local depth = redis.call('ZCARD', DELAYED)
  for _, stream in ipairs(STREAMS) do
    local st = group_state(stream, GROUP)
    if st then
      depth = depth + st.pending + waiting_estimate(stream, st)
    else
      depth = depth + redis.call('XLEN', stream)
    end
  end
  if adding > 0 and depth + adding > max_depth then return {'full', depth, max_depth} end
end

local ids = {}
for k, job in ipairs(jobs) do
  if job.skip then
    ids[k] = job.id
  elseif job.tag == 's' then
    local fields = {}
    for j = 1, 2 * job.n do fields[j] = ARGV[job.from + j - 1] end
    local eid = redis.call('XADD', job.stream, '*', unpack(fields))
    if job.id == '' then
      ids[k] = derived_id(job.priority, eid)
    else
      ids[k] = job.id
      redis.call('HSET', INDEX, job.id, derived_id(job.priority, eid))
    end
  else
    redis.call('ZADD', DELAYED, job.at, job.id)
    redis.call('HSET', SCHEDULED, job.id, job.env)
    ids[k] = job.id
  end
end
if marker then
  redis.call('HSET', marker, ARGV[3], 1)
  redis.call('PEXPIRE', marker, ARGV[4])
end
return {'ok', ids, existing}
