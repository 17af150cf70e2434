-- claim_counts.lua: how many new entries to claim from each priority stream.
-- KEYS: the four streams ... settings (shared/queue.lua)
-- ARGV[1] group   ARGV[2] N (the consumer's free slots)
-- Returns {-1} while the queue is paused, {-2, ms} while its rate limit
-- lets nothing start (ms: until one may; the counts returned are taken
-- from the limit, whether or not the reads then find them), {-3} while
-- its concurrency limit is reached, {-4} while a type or key has a rate
-- limit or hold (shared/rates.lua: each entry must pass through Lua, so
-- the caller claims with claim.lua instead), else
-- {c1, c2, c3, c4, cap}: take c1 from critical, then c2 from high, ...;
-- sum <= N, strict priority (a lower stream gets a count only when the higher
-- ones have fewer than N waiting). The caller then reads with plain
-- XREADGROUP COUNT ci, so the entries do not pass through Lua; cap is the
-- queue's events cap (0: off), for the caller to write the `started` events
-- of what it read before it hands the entries on.
-- Waiting = the group's lag (XINFO GROUPS), not XLEN - pending: a stream may
-- still hold finished entries that the bulk trim has not reached (see
-- shared/remove_done.lua). A stream whose group is missing (its key was
-- deleted) gets the group again, from the start.
local paused, limit, tat, held, concurrency, weights = claim_settings()
if paused then return {-1} end
-- A rate limit or hold of a type or key looks at each entry (claim.lua).
if redis.call('EXISTS', QUEUE_BASE .. 'rates') == 1 then return {-4} end
local free = concurrency_allowance(tonumber(ARGV[2]), concurrency)
if free <= 0 then return {-3} end
local want, rate_wait, rate = rate_allowance(free, limit, tat, held)
if want <= 0 then return {-2, rate_wait} end
local asked = want
local counts = {0, 0, 0, 0}
for _, i in ipairs(stream_order(weights)) do
  local stream = STREAMS[i]
  if want <= 0 then break end
  local len = redis.call('XLEN', stream)
  if len > 0 then
    local st = group_state(stream, GROUP)
    local take
    if st then
      take = waiting(stream, st, want)
    else
      redis.call('XGROUP', 'CREATE', stream, GROUP, '0', 'MKSTREAM')
      take = math.min(want, len)
    end
    counts[i] = take
    want = want - take
  end
end
rate_take(rate, asked - want)
counts[5] = events_cap()
return counts
