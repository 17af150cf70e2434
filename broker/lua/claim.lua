-- claim.lua: hand up to N new entries to one consumer, highest priority first.
-- KEYS: the four streams ... settings (shared/queue.lua)
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] N (the consumer's free slots)
-- Returns a flat list {index, entries, index, entries, ...} where index is the
-- priority index (1-4) of the stream and entries is XREADGROUP's
-- {{id, {field, value, ...}}, ...}. {-1} while the queue is paused (nothing
-- is claimed); {-2, ms} while the queue's rate limit lets nothing start
-- (ms: until one may); {-3} while the queue's concurrency limit is
-- reached (as many jobs run as it allows). When nothing is waiting, {0, tail1, tail2, tail3, tail4}: each
-- stream's last entry id ('0-0' when it has none), for a plain XREAD BLOCK
-- from there to wait for the next entry without taking it (a blocking
-- XREADGROUP would take it, whatever a pause or hold says).
-- Strict priority: a lower stream is read only when the higher ones had fewer
-- than N undelivered entries (or weighted, with the `weights` setting:
-- shared/settings.lua, stream_order). A stream whose group is missing (its key was
-- deleted) gets the group again, from the start of the stream.
-- While the queue's events are on, each entry claimed gets its `started`
-- event here, in the claim itself: before any event its handler can cause
-- (progress, the outcome), and from the first claim after events are on.
local paused, limit, tat, held, concurrency, weights = claim_settings()
if paused then return {-1} end
local free = concurrency_allowance(tonumber(ARGV[3]), concurrency)
if free <= 0 then return {-3} end
local want, rate_wait, rate = rate_allowance(free, limit, tat, held)
if want <= 0 then return {-2, rate_wait} end
local cap = events_cap()
local consumer = ARGV[2]
local taken = 0
local out = {}
for _, i in ipairs(stream_order(weights)) do
  local stream = STREAMS[i]
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
      if cap > 0 then
        for _, e in ipairs(entries) do
          local id = field_in(e[2], 1, 'id') or derived_id(PRIORITIES[i], e[1])
          redis.call('XADD', EVENTS, 'MAXLEN', '~', cap, '*', 'event', 'started', 'id', id, 'worker', consumer)
        end
      end
      want = want - #entries
      taken = taken + #entries
    end
  end
end
rate_take(rate, taken)
if #out == 0 then
  out[1] = 0
  for i, stream in ipairs(STREAMS) do
    local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
    out[i + 1] = (last[1] and last[1][1]) or '0-0'
  end
end
return out
