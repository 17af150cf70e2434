-- shared/depth.lua (needs group_state.lua and waiting.lua): how many jobs a
-- queue holds, for its max_depth setting.

-- The jobs waiting, running, delayed or waiting at a concurrency gate
-- (their envelopes are in SCHEDULED; a delayed member from before 0.6 is
-- its own envelope, hence the larger of the two), each stream's waiting
-- entries counted exactly up to `limit`.
local function queue_depth(limit)
  local depth = math.max(redis.call('ZCARD', DELAYED), redis.call('HLEN', SCHEDULED))
  for _, stream in ipairs(STREAMS) do
    local st = group_state(stream, GROUP)
    if st then
      -- Exact (bounded by the limit), not XLEN - pending: a stream may
      -- still hold finished entries the bulk trim has not reached.
      depth = depth + st.pending + waiting(stream, st, limit + 1)
    else
      depth = depth + redis.call('XLEN', stream)
    end
  end
  return depth
end
