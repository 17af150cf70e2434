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

-- The queue's max_depth setting, or nil when it has none.
local function max_depth_setting()
  local max_depth = tonumber(redis.call('HGET', SETTINGS, 'max_depth'))
  if max_depth and max_depth > 0 then return max_depth end
  return nil
end

-- The reply refusing `adding` more jobs past `max_depth` (the queue's
-- setting, or nil for none), {'full', depth, max}; nil when they fit.
local function past_max_depth(adding, max_depth)
  if not max_depth or adding <= 0 then return nil end
  local depth = queue_depth(max_depth)
  if depth + adding > max_depth then return {'full', depth, max_depth} end
  return nil
end
