-- stats.lua: a queue's depth and counters, in one round trip (reads only).
-- KEYS: the four streams ... settings (shared/queue.lua)
-- ARGV[1] group
-- Returns {waiting, pending, delayed, dead, counters, paused}: waiting and pending
-- are lists of four numbers, one per priority stream, highest first
-- (waiting as shared/group_state.lua's waiting_estimate counts it);
-- delayed is the size of the delayed set, dead the length of the
-- dead-letter stream, counters the stats hash as a flat list, paused 1
-- while the queue is paused (else 0).
local waiting_n, pending_n = {0, 0, 0, 0}, {0, 0, 0, 0}
for i, stream in ipairs(STREAMS) do
  local st = group_state(stream, GROUP)
  if st then
    pending_n[i] = st.pending
    waiting_n[i] = waiting_estimate(stream, st)
  else
    -- No group yet (or no stream): every entry waits.
    waiting_n[i] = redis.call('XLEN', stream)
  end
end
return {waiting_n, pending_n, redis.call('ZCARD', DELAYED), redis.call('XLEN', DEAD),
  redis.call('HGETALL', STATS), is_paused() and 1 or 0}
