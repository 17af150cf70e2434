-- ack.lua: acknowledge and remove finished entries that this consumer still
-- owns, record their jobs' outcome, and tell waiters.
-- KEYS: the four streams ... retention (shared/queue.lua)
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] priority index (1-4)
-- ARGV[4] lowest id   ARGV[5] highest id   ARGV[6] n, then
-- ARGV[7 .. 6+n] entry ids, ARGV[7+n .. 6+2n] their job ids ('' to read
-- it from the entry: its `id` field, or the id derived from it),
-- ARGV[7+2n .. 6+3n] their records' fields as JSON members without braces
-- ('"type":"x","attempt":1,...', or empty). (Workers add the completed
-- jobs to the per-minute stats themselves, in bulk: record_timing.lua.)
-- Returns the number of entries acknowledged as succeeded (a job whose
-- cancellation was asked for while it ran ends cancelled instead). An entry that recovery handed to
-- another consumer (this one lost its lease) is left alone: the new owner's
-- pending entry stays, and the completion is not counted twice.
-- Each record is '{"state":"succeeded","finished_at":<server ms>,<fields>}'
-- in RESULTS, kept as shared/records.lua says; waiters hear
-- 'succeeded <job id> ...' on P:{Q}:finished.
local stream = stream_at(ARGV[3])
local n = tonumber(ARGV[6]) or 0
if n == 0 then return 0 end
local mine = owned_set(stream, GROUP, ARGV[2], ARGV[4], ARGV[5])
local entries, jobs, fields, entry_of = {}, {}, {}, {}
for i = 1, n do
  local e = ARGV[6 + i]
  if mine[e] then
    entries[#entries + 1] = e
    local job = ARGV[6 + n + i]
    if job == '' then
      local entry = redis.call('XRANGE', stream, e, e)[1]
      job = (entry and field_in(entry[2], 1, 'id')) or derived_id(PRIORITIES[tonumber(ARGV[3])], e)
    end
    jobs[#jobs + 1] = job
    entry_of[job] = e
    fields[#fields + 1] = ARGV[6 + 2 * n + i]
  end
end
if #entries == 0 then return 0 end
-- The time is read before any write (see retry.lua).
local now = server_now_ms()
local acked = finish(stream, GROUP, entries)
-- Jobs cancelled while they ran end cancelled, whatever they returned.
local cancelled = cancels_among(jobs)
if cancelled then
  local done, done_fields, gone, gone_fields = {}, {}, {}, {}
  for i, job in ipairs(jobs) do
    if cancelled[job] then
      gone[#gone + 1] = job
      gone_fields[#gone_fields + 1] = fields[i]
    else
      done[#done + 1] = job
      done_fields[#done_fields + 1] = fields[i]
    end
  end
  record_cancelled(gone, gone_fields, now)
  acked = acked - #gone
  jobs, fields = done, done_fields
  if #jobs == 0 then return acked end
end
redis.call('HINCRBY', STATS, COUNTER_COMPLETED, acked)
-- Only jobs that moved or were given their id have an index field: a
-- fresh job's id is its entry's.
local priority = PRIORITIES[tonumber(ARGV[3])]
local indexed = {}
for i, job in ipairs(jobs) do
  if job ~= priority .. '-' .. entry_of[job] then indexed[#indexed + 1] = job end
end
if #indexed > 0 then redis.call('HDEL', INDEX, unpack(indexed)) end
-- The settings this call needs, in one read.
local set = redis.call('HMGET', SETTINGS, 'retention_ms', 'retention_count', 'events')
local keep_ms = tonumber(set[1]) or DEFAULT_RETENTION_MS
local keep_n = tonumber(set[2]) or DEFAULT_RETENTION_COUNT
local rows = {}
if keep_ms > 0 and keep_n > 0 then
  local head = '{"state":"succeeded","finished_at":' .. now
  for i, f in ipairs(fields) do
    if f == '' then rows[i] = head .. '}' else rows[i] = head .. ',' .. f .. '}' end
  end
end
keep_records(jobs, rows, now, keep_ms, keep_n)
announce('succeeded', jobs)
emit(tonumber(set[3]) or 0, 'succeeded', jobs, {'worker', ARGV[2]})
return acked
