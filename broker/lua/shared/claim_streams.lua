-- shared/claim_streams.lua (needs names.lua, settings.lua and events.lua):
-- the body of claim.lua and claim_rated.lua, which differ only in the
-- filter each entry read passes through.
--
-- Hands up to ARGV[3] new entries to consumer ARGV[2], highest priority
-- first (see claim.lua for the reply). `filter(i, entries)`, when given,
-- returns the entries of stream index i that may start now, having dealt
-- with the rest (claim_rated.lua parks them); the streams are then read
-- on past them, up to 1,000 entries per call, and {-4} says that all read
-- was filtered out and more may wait (claim again).
local function claim_streams(filter)
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
      if filter then entries = filter(i, entries) end
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
      -- Read on only past entries filtered out, and a bounded number.
      examined = examined + read
      if #entries == read or read < asked or examined >= 1000 then break end
    end
    if want <= 0 or examined >= 1000 then break end
  end
  rate_take(rate, taken)
  if #out == 0 and examined >= 1000 then return {-4} end
  if #out == 0 then
    out[1] = 0
    for i, stream in ipairs(STREAMS) do
      local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
      out[i + 1] = (last[1] and last[1][1]) or '0-0'
    end
  end
  return out
end
