-- ack.lua: acknowledge and remove finished entries that this consumer still
-- owns, record their jobs' outcome, and tell waiters.
-- KEYS: the four streams ... retention (shared/queue.lua)
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] priority index (1-4)
-- ARGV[4] lowest id   ARGV[5] highest id   ARGV[6] n, then
-- ARGV[7 .. 6+n] entry ids, then three sections, each a count k followed
-- by k pairs (position of the entry among the n, value), for the entries
-- that need them:
--   job ids: a job whose id is not '<priority>-<entry id>' (it moved or
--     was given its id); '' to read it from the entry (its `id` field, or
--     the id derived from it);
--   records: the record's fields as JSON members without braces
--     ('"type":"x","attempt":1,...'); none, an empty record;
--   lifetimes: the job's own record retention in ms (its enqueue option;
--     0 keeps none), instead of the queue's retention_ms;
-- and last the notice waiters hear when every entry succeeded:
-- 'succeeded <job id> <job id> ...' ('' when some ids are not known).
-- The common case (fresh jobs, the queue keeps no records) sends the entry
-- ids and the notice, and the script builds no string per job (Lua 5.1
-- interns every string it makes: a string per job would cost Redis more
-- than the acknowledgement itself). (Workers add the
-- completed jobs to the per-minute stats themselves, in bulk:
-- record_timing.lua.)
-- Returns the number of entries acknowledged as succeeded (a job whose
-- cancellation was asked for while it ran ends cancelled instead). An
-- entry that recovery handed to another consumer (this one lost its
-- lease) is left alone: the new owner's pending entry stays, and the
-- completion is not counted twice.
-- Each record is '{"state":"succeeded","finished_at":<server ms>,<fields>}'
-- in RESULTS, kept as shared/records.lua says; waiters hear
-- 'succeeded <job id> ...' on P:{Q}:finished.
local stream = stream_at(ARGV[3])
local n = tonumber(ARGV[6]) or 0
if n == 0 then return 0 end
local priority = PRIORITIES[tonumber(ARGV[3])]

-- The sections: position -> value.
local at = 7 + n
local function section()
  local k, out = tonumber(ARGV[at]) or 0, {}
  for j = 1, k do out[tonumber(ARGV[at + 2 * j - 1])] = ARGV[at + 2 * j] end
  at = at + 1 + 2 * k
  return out
end
local given, records, lifetimes = section(), section(), section()
local notice = ARGV[at] or ''

-- The positions of the entries this consumer still owns; the entries
-- themselves; the ids of jobs with an index field (moved or given ids).
local mine = owned_set(stream, GROUP, ARGV[2], ARGV[4], ARGV[5])
local entries, indexed = {}, {}
local some_given, k = next(given) ~= nil, 0
for i = 1, n do
  local e = ARGV[6 + i]
  if mine[e] then
    k = k + 1
    entries[k] = e
    local job = some_given and given[i]
    if job then
      if job == '' then
        local entry = redis.call('XRANGE', stream, e, e)[1]
        job = (entry and field_in(entry[2], 1, 'id')) or derived_id(priority, e)
        given[i] = job
      end
      if job ~= priority .. '-' .. e then indexed[#indexed + 1] = job end
    end
  end
end
if k == 0 then return 0 end
-- The positions of the entries owned: nil while that is all of them
-- (the common case makes no table per job); positions() makes the list.
local owned
if k < n then
  owned = {}
  for i = 1, n do
    if mine[ARGV[6 + i]] then owned[#owned + 1] = i end
  end
end
local function positions()
  if not owned then
    owned = {}
    for i = 1, n do owned[i] = i end
  end
  return owned
end

-- The job id at position i.
local function job_at(i)
  return given[i] or (priority .. '-' .. ARGV[6 + i])
end
-- The job ids of the positions `list`.
local function jobs_of(list)
  local out = {}
  for k, i in ipairs(list) do out[k] = job_at(i) end
  return out
end

-- The time is read before any write (see retry.lua).
local now = server_now_ms()
local acked = finish(stream, GROUP, entries)
if #indexed > 0 then redis.call('HDEL', INDEX, unpack(indexed)) end
-- Their concurrency slots free (shared/gates.lua): one HLEN while no job
-- of the queue is under a limit.
if redis.call('HLEN', GATED) > 0 then gate_release(jobs_of(positions())) end

-- Jobs cancelled while they ran end cancelled, whatever they returned.
if redis.call('HLEN', CANCELS) > 0 then
  local cancelled = cancels_among(jobs_of(positions()))
  if cancelled then
    local done, gone, gone_fields = {}, {}, {}
    for _, i in ipairs(positions()) do
      local job = job_at(i)
      if cancelled[job] then
        gone[#gone + 1] = job
        gone_fields[#gone_fields + 1] = records[i] or ''
      else
        done[#done + 1] = i
      end
    end
    record_cancelled(gone, gone_fields, now)
    acked = acked - #gone
    owned = done
    if #owned == 0 then return acked end
  end
end
redis.call('HINCRBY', STATS, COUNTER_COMPLETED, acked)
redis.call('HINCRBY', STATS, COUNTER_COMPLETED .. ':' .. priority, acked)

-- The settings this call needs, in one read.
local set = redis.call('HMGET', SETTINGS, 'retention_ms', 'retention_count', 'events')
local keep_ms = tonumber(set[1]) or DEFAULT_RETENTION_MS
local keep_n = tonumber(set[2]) or DEFAULT_RETENTION_COUNT
local cap = tonumber(set[3]) or 0
local jobs
if keep_n > 0 and (keep_ms > 0 or next(lifetimes)) then
  jobs = jobs_of(positions())
  local head = '{"state":"succeeded","finished_at":' .. now
  local rows, ms = {}, {}
  for j, i in ipairs(positions()) do
    local f = records[i]
    if f and f ~= '' then rows[j] = head .. ',' .. f .. '}' else rows[j] = head .. '}' end
    ms[j] = tonumber(lifetimes[i])
  end
  keep_records(jobs, rows, now, keep_ms, keep_n, ms)
else
  -- No record to write; older ones still expire, a few at a time.
  keep_records({}, {}, now, keep_ms, keep_n)
end
if not owned and notice ~= '' and cap == 0 and redis.call('HLEN', PROGRESS) == 0 then
  publish_notice(notice)
else
  jobs = jobs or jobs_of(positions())
  announce('succeeded', jobs)
  emit(cap, 'succeeded', jobs, {'worker', ARGV[2]})
end
-- The jobs waiting for these go on, with their results (shared/deps.lua),
-- after the `succeeded` events, so that a released job's or a batch
-- callback's events come after them; results these held go. Two HLENs
-- while no job of the queue waits for another.
if redis.call('HLEN', DEPENDENTS) > 0 or redis.call('HLEN', DEP_RESULTS) > 0 then
  local ids, by_id = jobs_of(positions()), {}
  for k, i in ipairs(positions()) do by_id[ids[k]] = records[i] end
  deps_ended(ids, 'succeeded', by_id)
end
return acked
