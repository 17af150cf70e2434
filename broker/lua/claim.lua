-- claim.lua: hand up to N new entries to one consumer, highest priority first.
-- KEYS: the four streams ... settings (shared/queue.lua)
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] N (the consumer's free slots)
-- Returns a flat list {index, entries, index, entries, ...} where index is the
-- priority index (1-4) of the stream and entries is XREADGROUP's
-- {{id, {field, value, ...}}, ...}. {-1} while the queue is paused (nothing
-- is claimed); {-2, ms} while the queue's rate limit lets nothing start
-- (ms: until one may); {-3} while the queue's concurrency limit is
-- reached (as many jobs run as it allows); {-4} when every entry read was
-- parked under a rate limit of its type or key (shared/rates.lua) and more
-- may wait: claim again at once. When nothing is waiting, {0, tail1, tail2, tail3, tail4}: each
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
-- Rate limits of a type or key (shared/rates.lua): a job whose gate has no
-- slot now is parked in this call, and the stream read on for others.
local rated = rates_on()
local now = rated and server_now_ms()
local examined = 0
for _, i in ipairs(stream_order(weights)) do
  local stream = STREAMS[i]
  while want > 0 do
    local asked = want
    local res = redis.pcall('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', want, 'STREAMS', stream, '>')
    if type(res) == 'table' and res.err then
      if string.find(res.err, 'NOGROUP', 1, true) then
        redis.call('XGROUP', 'CREATE', stream, GROUP, '0', 'MKSTREAM')
        res = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', want, 'STREAMS', stream, '>')
      else
        return redis.error_reply(res.err)
      end
    end
    local entries = (res and res[1][2]) or {}
    local read = #entries
    if read == 0 then break end
    if rated then
      local kept, parked = {}, {}
      for _, e in ipairs(entries) do
        local ok, g, at = rate_admit(e[2], now)
        if ok then
          kept[#kept + 1] = e
        else
          rate_park(i, field_in(e[2], 1, 'id') or derived_id(PRIORITIES[i], e[1]), e[2], g, at)
          parked[#parked + 1] = e[1]
        end
      end
      if #parked > 0 then
        finish(stream, GROUP, parked)
      end
      entries = kept
    end
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
    -- Read on only past jobs parked here, and a bounded number of them.
    examined = examined + read
    if #entries == read or read < asked or examined >= 1000 then break end
  end
  if want <= 0 or examined >= 1000 then break end
end
if rated then rate_flush(now) end
rate_take(rate, taken)
-- Only parked jobs were read, and the streams may hold more: claim again.
if #out == 0 and examined >= 1000 then return {-4} end
if #out == 0 then
  out[1] = 0
  for i, stream in ipairs(STREAMS) do
    local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
    out[i + 1] = (last[1] and last[1][1]) or '0-0'
  end
end
return out
