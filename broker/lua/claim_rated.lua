-- claim_rated.lua: claim.lua for a queue whose types or keys have rate
-- limits or holds (shared/rates.lua): each entry read passes its rate
-- gates, and one that has no slot now is parked in this call (out of its
-- stream, into its gate's wait list) while the streams are read on for
-- others.
-- KEYS: the four streams ... events (shared/queue.lua)
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] N (the consumer's free slots)
-- Returns what claim.lua returns, or {-4} when every entry read (1,000)
-- was parked and more may wait: claim again at once; or {-6} once no type
-- or key has a rate limit or hold: nothing is claimed, claim with claim.lua.
if not rates_on() then return {-6} end
local now = server_now_ms()
local reply = claim_streams(function(i, entries)
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
  if #parked > 0 then finish(STREAMS[i], GROUP, parked) end
  return kept
end)
rate_flush(now)
return reply
