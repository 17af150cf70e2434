-- shared/timing.lua: per-minute counts and wait/run time histograms of the
-- last minutes (TIMING), for stats: O(1) per job (a few HINCRBYs per
-- batch), bounded memory (minutes past the window are deleted as the
-- minute turns).
--
-- Completed jobs are added by workers, in bulk, about once a second
-- (record_timing.lua); the rarer outcomes by the scripts that record them.
--
-- Fields: '<minute>:<metric>' for the whole queue and
-- '<minute>:<priority>:<metric>' for the jobs of one priority, minute =
-- floor(server ms / 60000); metrics: n completed, f failed for good, t
-- retried, c cancelled (queue only), ws / rs sums of wait / run times (ms),
-- w<k> / r<k> histogram buckets: bucket k holds times t (ms) with
-- floor(4 * log2(t + 1)) = k (4 buckets per doubling: about 19% wide), k
-- at most TIMING_MAX_BUCKET. 'minute': the last minute written.
-- 'all:<priority>:<metric>' (n, ws, rs, w<k>, r<k>): the same for every job
-- completed since the queue began, never reset (Prometheus histograms);
-- at most 4 x 245 fields.

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
  -- Minutes to delete: those that left the window; after the server's
  -- clock went back, also those "ahead" of it (they would count twice).
  local from, to = last - TIMING_WINDOW_MINUTES + 1, math.min(last, m - TIMING_WINDOW_MINUTES)
  if m < last then from, to = math.max(m + 1, last - TIMING_WINDOW_MINUTES + 1), last end
  -- One HDEL per old minute and scope (the queue, then each priority).
  for old = from, to do
    for _, scope in ipairs({'', PRIORITIES[1], PRIORITIES[2], PRIORITIES[3], PRIORITIES[4]}) do
      local base = old .. ':'
      if scope ~= '' then base = base .. scope .. ':' end
      local gone = {}
      for _, f in ipairs({'n', 'f', 't', 'c', 'ws', 'rs'}) do gone[#gone + 1] = base .. f end
      for k = 0, TIMING_MAX_BUCKET do
        gone[#gone + 1] = base .. 'w' .. k
        gone[#gone + 1] = base .. 'r' .. k
      end
      redis.call('HDEL', TIMING, unpack(gone))
    end
  end
  return m
end

-- Adds `n` to metric `metric` of the current minute, for the queue and,
-- when `priority` (a name) is given, for that priority too.
local function timing_count(now, metric, n, priority)
  if n <= 0 then return end
  local m = timing_minute(now)
  redis.call('HINCRBY', TIMING, m .. ':' .. metric, n)
  if priority then redis.call('HINCRBY', TIMING, m .. ':' .. priority .. ':' .. metric, n) end
end

-- Adds a worker's batch of completed jobs to the current minute: ARGV
-- from `from` on: ('<priority>:<metric>', count) pairs, metric one of n,
-- ws, rs, w<k>, r<k> ('high:n', 12, 'high:w17', 3, ...). Each is added to
-- the priority's field and to the queue's of the minute, and to the
-- priority's running total ('all:'). Anything else is ignored.
local function timing_add(now, args, from)
  local m = timing_minute(now)
  for i = from, #args - 1, 2 do
    local priority, metric = string.match(args[i], '^(%l+):(%l%l?%d*)$')
    local n = tonumber(args[i + 1])
    if priority and PRIORITY_INDEX[priority] and n and n > 0
      and (metric == 'n' or metric == 'ws' or metric == 'rs' or string.match(metric, '^[wr]%d+$')) then
      redis.call('HINCRBY', TIMING, m .. ':' .. metric, n)
      redis.call('HINCRBY', TIMING, m .. ':' .. priority .. ':' .. metric, n)
      redis.call('HINCRBY', TIMING, 'all:' .. priority .. ':' .. metric, n)
    end
  end
end
