-- dead_letter.lua: move a failed or malformed entry from its stream to the dead-letter stream.
-- KEYS: the four streams ... index (shared/queue.lua)
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] priority index (1-4)   ARGV[4] entry id
-- ARGV[5] cap on the dead-letter stream's length (0 = keep every entry)
-- ARGV[6] counter to bump: 'dead' or 'malformed'
-- ARGV[7] error   ARGV[8] when the failed attempt started (ms; '' when not
-- known): for the record of a job that ends cancelled
-- ARGV[9..] the entry's fields as stored
-- failed_at is the server's time (shared/clock.lua).
-- Returns {moved, dropped}: moved is 1, or 0 if the entry is no longer pending
-- for this consumer; dropped counts old dead-letter entries the cap removed
-- (also added to the counter 'dead_dropped'). The dead letter keeps the
-- fields shared/dead_letter.lua chooses. A job whose cancellation was
-- asked for while it ran ends cancelled instead (moved is 2).
-- The time is read before any write (see retry.lua).
local now = server_now_ms()
local stream = stream_at(ARGV[3])
local priority = PRIORITIES[tonumber(ARGV[3])]
local id, counter = ARGV[4], ARGV[6]
if counter ~= COUNTER_DEAD and counter ~= COUNTER_MALFORMED then
  error('ferry: bad dead-letter counter ' .. tostring(counter))
end
if not pending_for(stream, GROUP, ARGV[2], id) then return {0, 0} end
finish(stream, GROUP, {id})
local job = field_in(ARGV, 9, 'id') or derived_id(priority, id)
gate_release({job})
if cancels_among({job}) then
  record_cancelled({job}, {entry_record(ARGV, 9, id, priority, ARGV[8], ARGV[2])}, now)
  return {2, 0}
end
local dropped = write_dead_letter(ARGV, 9, ARGV[7], now, priority, tonumber(ARGV[5]), counter, id)
return {1, dropped}
