-- enqueue.lua: one chunk of new jobs, checked and written at once.
-- KEYS: the four streams ... retention (shared/queue.lua), then, for a batch
-- under an idempotency key, KEYS[18] its hash P:{Q}:batch:<key> (field =
-- chunk number)
-- ARGV[1] group   ARGV[2] on a duplicate id: 'error' or 'existing'
-- ARGV[3] chunk number   ARGV[4] the batch hash's TTL (ms)
-- ARGV[5] enqueued_at (ms) of the jobs with a given id
-- ARGV[6] how many jobs have a given id (0: no duplicate checks)
-- ARGV[7..] the jobs, each either
--   's', priority index (1-4), job id ('' for a fresh job), type, payload,
--   max_retries: XADD to that stream (attempt 1; a given id and
--   enqueued_at too)
--   'd', run-at (ms), job id, envelope JSON: into the delayed set
-- Returns one of
--   {'ok', ids, existing}: ids of the jobs in order (a fresh job's id is
--   '<priority>-<entry id>', see names.lua); existing lists the positions
--   (from 1) of jobs not written because their id already exists;
--   {'done'}: the chunk was written before (KEYS[18] says so);
--   {'duplicate', id}: a given id exists (ARGV[2] 'error'); nothing written;
--   {'full', depth, max}: the chunk would take the queue past the
--   max_depth setting; nothing written.
-- An id exists while its job is scheduled, queued, running, dead-lettered
-- or has a record. Depth counts jobs waiting, running and delayed.
-- The hot path (fresh jobs, no max_depth) builds no table per job: a
-- chunk of 1,000 is about as cheap for Redis as 1,000 XADDs.
local marker = EXTRA_KEY
if marker and redis.call('HEXISTS', marker, ARGV[3]) == 1 then return {'done'} end
local FIRST = 7

-- The position in ARGV of the job after the one at `i`.
local function next_job(i)
  if ARGV[i] == 's' then return i + 6 end
  if ARGV[i] == 'd' then return i + 4 end
  error('ferry: bad job tag ' .. tostring(ARGV[i]))
end

-- Pass 1, only when some job has a given id: which exist already.
local skip, existing, n_jobs = {}, {}, 0
if tonumber(ARGV[6]) > 0 then
  local now = server_now_ms()
  local seen = {}
  local i = FIRST
  while i <= #ARGV do
    n_jobs = n_jobs + 1
    local id = ARGV[i + 2]
    if id ~= '' then
      if seen[id] or redis.call('HEXISTS', INDEX, id) == 1 or redis.call('ZSCORE', DELAYED, id)
          or has_record(id, now) then
        if ARGV[2] ~= 'existing' then return {'duplicate', id} end
        skip[n_jobs] = true
        existing[#existing + 1] = n_jobs
      end
      seen[id] = true
    end
    i = next_job(i)
  end
end

local max_depth = tonumber(redis.call('HGET', SETTINGS, 'max_depth'))
if max_depth and max_depth > 0 then
  if n_jobs == 0 then
    local i = FIRST
    while i <= #ARGV do
      n_jobs = n_jobs + 1
      i = next_job(i)
    end
  end
  local adding = n_jobs - #existing
  local depth = redis.call('ZCARD', DELAYED)
  for _, stream in ipairs(STREAMS) do
    local st = group_state(stream, GROUP)
    if st then
      -- Exact (bounded by the limit), not XLEN - pending: a stream may
      -- still hold finished entries the bulk trim has not reached.
      depth = depth + st.pending + waiting(stream, st, max_depth + 1)
    else
      depth = depth + redis.call('XLEN', stream)
    end
  end
  if adding > 0 and depth + adding > max_depth then return {'full', depth, max_depth} end
end

local ids, written = {}, {}
local k, i = 0, FIRST
while i <= #ARGV do
  k = k + 1
  local tag, id = ARGV[i], ARGV[i + 2]
  if skip[k] then
    ids[k] = id
  elseif tag == 's' then
    local index = tonumber(ARGV[i + 1])
    local stream = STREAMS[index]
    if not stream then error('ferry: bad priority index ' .. tostring(ARGV[i + 1])) end
    if id == '' then
      ids[k] = PRIORITIES[index] .. '-' .. redis.call('XADD', stream, '*', 'type', ARGV[i + 3],
        'payload', ARGV[i + 4], 'attempt', '1', 'max_retries', ARGV[i + 5])
    else
      local eid = redis.call('XADD', stream, '*', 'id', id, 'type', ARGV[i + 3], 'payload', ARGV[i + 4],
        'attempt', '1', 'max_retries', ARGV[i + 5], 'enqueued_at', ARGV[5])
      redis.call('HSET', INDEX, id, derived_id(PRIORITIES[index], eid))
      -- A request left by an earlier job of this id is not this one's.
      redis.call('HDEL', CANCELS, id)
      redis.call('HDEL', PROGRESS, id)
      ids[k] = id
    end
  else
    redis.call('ZADD', DELAYED, ARGV[i + 1], id)
    redis.call('HSET', SCHEDULED, id, ARGV[i + 3])
    ids[k] = id
  end
  i = next_job(i)
end
for j, id in ipairs(ids) do
  if not skip[j] then written[#written + 1] = id end
end
emit(events_cap(), 'enqueued', written, {})
if marker then
  redis.call('HSET', marker, ARGV[3], 1)
  redis.call('PEXPIRE', marker, ARGV[4])
end
return {'ok', ids, existing}
