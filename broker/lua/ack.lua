-- ack.lua: acknowledge and remove finished entries that this consumer still
-- owns, record their jobs' outcome, and tell waiters.
-- KEYS: the four streams ... retention (shared/queue.lua)
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] priority index (1-4)
-- ARGV[4] lowest id   ARGV[5] highest id   ARGV[6] n, then
-- ARGV[7 .. 6+n] entry ids, ARGV[7+n .. 6+2n] their job ids,
-- ARGV[7+2n .. 6+3n] their records' fields as JSON members without braces
-- ('"type":"x","attempt":1,...', or empty).
-- Returns the number of entries acknowledged. An entry that recovery handed to
-- another consumer (this one lost its lease) is left alone: the new owner's
-- pending entry stays, and the completion is not counted twice.
-- Each record is '{"state":"succeeded","finished_at":<server ms>,<fields>}'
-- in RESULTS, kept as shared/records.lua says; waiters hear
-- 'succeeded <job id> ...' on P:{Q}:finished.
local stream = stream_at(ARGV[3])
local n = tonumber(ARGV[6]) or 0
if n == 0 then return 0 end
local mine = owned_set(stream, GROUP, ARGV[2], ARGV[4], ARGV[5])
local entries, jobs, fields = {}, {}, {}
for i = 1, n do
  local e = ARGV[6 + i]
  if mine[e] then
    entries[#entries + 1] = e
    jobs[#jobs + 1] = ARGV[6 + n + i]
    fields[#fields + 1] = ARGV[6 + 2 * n + i]
  end
end
if #entries == 0 then return 0 end
-- The time is read before any write (see retry.lua).
local now = server_now_ms()
local acked = finish(stream, GROUP, entries)
redis.call('HINCRBY', STATS, COUNTER_COMPLETED, acked)
redis.call('HDEL', INDEX, unpack(jobs))
local head = '{"state":"succeeded","finished_at":' .. now
local rows = {}
for i, f in ipairs(fields) do
  if f == '' then rows[i] = head .. '}' else rows[i] = head .. ',' .. f .. '}' end
end
keep_records(jobs, rows, now)
announce('succeeded', jobs)
return acked
