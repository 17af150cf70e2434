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
--   'r': as 's', then the job's own record retention (ms), written as
--   the entry's `retention_ms` field
--   't': as 'r' (retention '' for the queue's), then the producer's
--   traceparent and tracestate ('' for none), written as the entry's
--   `traceparent` and `tracestate` fields
--   'c': as 't' (traceparent '' for none), then the job's concurrency
--   key, written as the entry's `concurrency_key` field
--   'd', run-at (ms), job id, envelope JSON: into the delayed set
-- A job under a concurrency limit of its key or type with no free slot
-- waits at its gate instead of entering its stream (shared/gates.lua); a
-- fresh one is given an id then, 'gated-<server µs>-<position>'.
-- Returns one of
--   {'ok', ids, existing}: ids of the jobs in order, a fresh job's as its
--   entry id (its job id is '<priority>-<entry id>', see names.lua: the
--   caller prefixes it, a string per job less for Redis to build), or as
--   the id it was given when it waits at a gate;
--   existing lists the positions
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
  if ARGV[i] == 'r' then return i + 7 end
  if ARGV[i] == 't' then return i + 9 end
  if ARGV[i] == 'c' then return i + 10 end
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

local max_depth = max_depth_setting()
if max_depth then
  if n_jobs == 0 then
    local i = FIRST
    while i <= #ARGV do
      n_jobs = n_jobs + 1
      i = next_job(i)
    end
  end
  local full = past_max_depth(n_jobs - #existing, max_depth)
  if full then return full end
end

-- Concurrency limits (shared/gates.lua): asked once; while the queue has
-- none, every job takes the paths below as before.
local on = gating_on()
-- The id of a fresh job that waits at a gate (k: its position).
local gated_base
local function gated_id(k)
  if not gated_base then
    local t = redis.call('TIME')
    gated_base = 'gated-' .. t[1] .. string.format('%06d', tonumber(t[2])) .. '-'
  end
  local id, n = gated_base .. k, 0
  while redis.call('HEXISTS', INDEX, id) == 1 or redis.call('HEXISTS', SCHEDULED, id) == 1
      or redis.call('HEXISTS', RESULTS, id) == 1 do
    n = n + 1
    id = gated_base .. k .. '-' .. n
  end
  return id
end

-- Stream keys by the priority index as sent ('1'..'4').
local STREAM_AT = {['1'] = STREAMS[1], ['2'] = STREAMS[2], ['3'] = STREAMS[3], ['4'] = STREAMS[4]}

-- Writes the job at ARGV[i], the k-th, other than a fresh one; returns
-- its id.
local function write_other(i, k)
  local tag, id = ARGV[i], ARGV[i + 2]
  if skip[k] then return id end
  if tag == 'd' then
    redis.call('ZADD', DELAYED, ARGV[i + 1], id)
    redis.call('HSET', SCHEDULED, id, ARGV[i + 3])
    return id
  end
  local stream = STREAM_AT[ARGV[i + 1]]
  if not stream then error('ferry: bad priority index ' .. tostring(ARGV[i + 1])) end
  local priority = PRIORITIES[tonumber(ARGV[i + 1])]
  local ckey = (tag == 'c' and ARGV[i + 9] ~= '' and ARGV[i + 9]) or nil
  local gated = on and #gates_of(ARGV[i + 3], ckey) > 0
  if gated and id == '' then id = gated_id(k) end
  local fields
  if id == '' then
    fields = {'type', ARGV[i + 3], 'payload', ARGV[i + 4], 'attempt', '1', 'max_retries', ARGV[i + 5]}
  else
    fields = {'id', id, 'type', ARGV[i + 3], 'payload', ARGV[i + 4], 'attempt', '1',
      'max_retries', ARGV[i + 5], 'enqueued_at', ARGV[5]}
  end
  if tag == 'r' or ((tag == 't' or tag == 'c') and ARGV[i + 6] ~= '') then
    fields[#fields + 1] = 'retention_ms'
    fields[#fields + 1] = ARGV[i + 6]
  end
  if ckey then
    fields[#fields + 1] = CONCURRENCY_KEY_FIELD
    fields[#fields + 1] = ckey
  end
  if tag == 't' or (tag == 'c' and ARGV[i + 7] ~= '') then
    fields[#fields + 1] = 'traceparent'
    fields[#fields + 1] = ARGV[i + 7]
    if ARGV[i + 8] ~= '' then
      fields[#fields + 1] = 'tracestate'
      fields[#fields + 1] = ARGV[i + 8]
    end
  end
  if id == '' then return redis.call('XADD', stream, '*', unpack(fields)) end
  -- The write that grows memory first: under maxmemory (noeviction) Redis
  -- refuses a script's first such write, not those after another write.
  enter_stream(gated, id, priority, fields, ARGV[i + 3], ckey)
  -- A request left by an earlier job of this id is not this one's.
  redis.call('HDEL', CANCELS, id)
  redis.call('HDEL', PROGRESS, id)
  return id
end

local ids = {}
local k, i, last = 0, FIRST, #ARGV
while i <= last do
  k = k + 1
  local stream = STREAM_AT[ARGV[i + 1]]
  if ARGV[i] == 's' and ARGV[i + 2] == '' and stream and not on then
    -- The hot path, inline: a fresh job, named by its entry.
    ids[k] = redis.call('XADD', stream, '*', 'type', ARGV[i + 3], 'payload', ARGV[i + 4],
      'attempt', '1', 'max_retries', ARGV[i + 5])
    i = i + 6
  else
    ids[k] = write_other(i, k)
    i = next_job(i)
  end
end
local cap = events_cap()
if cap > 0 then
  local written = {}
  i = FIRST
  for j = 1, k do
    if ARGV[i] ~= 'd' and ARGV[i + 2] == '' and string.find(ids[j], '^%d+%-%d+$') then
      written[#written + 1] = PRIORITIES[tonumber(ARGV[i + 1])] .. '-' .. ids[j]
    elseif not skip[j] then
      written[#written + 1] = ids[j]
    end
    i = next_job(i)
  end
  emit(cap, 'enqueued', written, {})
end
if marker then
  redis.call('HSET', marker, ARGV[3], 1)
  redis.call('PEXPIRE', marker, ARGV[4])
end
return {'ok', ids, existing}
