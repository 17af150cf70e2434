-- claim.lua: hand up to N new entries to one consumer, highest priority first.
-- KEYS: the four streams ... settings (shared/queue.lua)
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] N (the consumer's free slots)
-- Returns a flat list {index, entries, index, entries, ...} where index is the
-- priority index (1-4) of the stream and entries is XREADGROUP's
-- {{id, {field, value, ...}}, ...}. Empty when nothing is waiting; {-1}
-- while the queue is paused (nothing is claimed).
-- Strict priority: a lower stream is read only when the higher ones had fewer
-- than N undelivered entries. A stream whose group is missing (its key was
-- deleted) gets the group again, from the start of the stream.
if is_paused() then return {-1} end
local consumer = ARGV[2]
local want = tonumber(ARGV[3])
local out = {}
for i, stream in ipairs(STREAMS) do
  if want <= 0 then break end
  local res = redis.pcall('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', want, 'STREAMS', stream, '>')
  if type(res) == 'table' and res.err then
    if string.find(res.err, 'NOGROUP', 1, true) then
      redis.call('XGROUP', 'CREATE', stream, GROUP, '0', 'MKSTREAM')
      res = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', want, 'STREAMS', stream, '>')
    else
      return redis.error_reply(res.err)
    end
  end
  if res then
    local entries = res[1][2]
    if #entries > 0 then
      out[#out + 1] = i
      out[#out + 1] = entries
      want = want - #entries
    end
  end
end
return out
