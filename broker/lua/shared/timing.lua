-- shared/timing.lua: per-minute counts and wait/run time histograms of the
-- last minutes (TIMING), for stats: O(1) per job (a few HINCRBYs per
-- batch), bounded memory (minutes past the window are deleted as the
-- minute turns).
--
-- Fields: '<minute>:<metric>', minute = floor(server ms / 60000);
-- metrics: n completed, f failed for good, t retried, c cancelled, ws / rs
-- sums of wait / run times (ms), w<k> / r<k> histogram buckets: bucket k
-- holds times t (ms) with floor(4 * log2(t + 1)) = k (4 buckets per
-- doubling: about 19% wide), k at most TIMING_MAX_BUCKET. 'minute': the
-- last minute written.

local TIMING_WINDOW_MINUTES = 15
local TIMING_MAX_BUCKET = 120
local LOG2 = math.log(2)

-- The histogram bucket of `ms`.
local function timing_bucket(ms)
  if ms <= 0 then return 0 end
  return math.min(TIMING_MAX_BUCKET, math.floor(4 * math.log(ms + 1) / LOG2))
end

-- Starts minute `m` if it is new: deletes the fields of the minutes that
-- left the window (at most the window's worth, whatever the gap).
local function timing_minute(now)
  local m = math.floor(now / 60000)
  local last = tonumber(redis.call('HGET', TIMING, 'minute'))
  if last == m then return m end
  redis.call('HSET', TIMING, 'minute', m)
  if not last then return m end
  local gone = {}
  for old = last - TIMING_WINDOW_MINUTES + 1, math.min(last, m - TIMING_WINDOW_MINUTES) do
    for _, f in ipairs({'n', 'f', 't', 'c', 'ws', 'rs'}) do gone[#gone + 1] = old .. ':' .. f end
    for k = 0, TIMING_MAX_BUCKET do
      gone[#gone + 1] = old .. ':w' .. k
      gone[#gone + 1] = old .. ':r' .. k
    end
    redis.call('HDEL', TIMING, unpack(gone))
    gone = {}
  end
  return m
end

-- Adds `n` to metric `metric` of the current minute.
local function timing_count(now, metric, n)
  if n <= 0 then return end
  local m = timing_minute(now)
  redis.call('HINCRBY', TIMING, m .. ':' .. metric, n)
end

-- Adds finished jobs' wait and run times (lists of ms) to the current
-- minute: one HINCRBY per bucket used, not per job.
local function timing_add(now, waits, runs)
  local m = timing_minute(now)
  local counts, ws, rs = {}, 0, 0
  for _, w in ipairs(waits) do
    local f = m .. ':w' .. timing_bucket(w)
    counts[f] = (counts[f] or 0) + 1
    ws = ws + w
  end
  for _, r in ipairs(runs) do
    local f = m .. ':r' .. timing_bucket(r)
    counts[f] = (counts[f] or 0) + 1
    rs = rs + r
  end
  for f, c in pairs(counts) do redis.call('HINCRBY', TIMING, f, c) end
  redis.call('HINCRBY', TIMING, m .. ':ws', math.floor(ws))
  redis.call('HINCRBY', TIMING, m .. ':rs', math.floor(rs))
end
