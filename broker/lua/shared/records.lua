-- shared/records.lua (needs settings.lua): finished jobs' records, and the
-- notice that a job finished.
--
-- A record is a JSON object in RESULTS (field = job id); RETENTION (a
-- sorted set) holds the same ids scored by when the record expires. Each
-- write trims at most a bounded number of expired or surplus records, so
-- the work is O(log n) per job and memory stays bounded by the retention.

-- Removes up to `most` expired records, then up to `most` of the oldest
-- records past `keep_n`.
local function trim_records(now, keep_n, most)
  local old = redis.call('ZRANGEBYSCORE', RETENTION, '-inf', now, 'LIMIT', 0, most)
  if #old > 0 then
    redis.call('HDEL', RESULTS, unpack(old))
    redis.call('ZREM', RETENTION, unpack(old))
  end
  local over = redis.call('ZCARD', RETENTION) - keep_n
  if over > 0 then
    local popped = redis.call('ZPOPMIN', RETENTION, math.min(over, most))
    local ids = {}
    for i = 1, #popped, 2 do ids[#ids + 1] = popped[i] end
    if #ids > 0 then redis.call('HDEL', RESULTS, unpack(ids)) end
  end
end

-- Keeps the records `rows[i]` of the jobs `ids[i]` as the retention
-- settings say (none when either is 0).
local function keep_records(ids, rows, now)
  local keep_ms, keep_n = retention()
  if keep_ms <= 0 or keep_n <= 0 or #ids == 0 then return end
  local h, z = {}, {}
  for i, id in ipairs(ids) do
    h[#h + 1] = id
    h[#h + 1] = rows[i]
    z[#z + 1] = now + keep_ms
    z[#z + 1] = id
  end
  redis.call('HSET', RESULTS, unpack(h))
  redis.call('ZADD', RETENTION, unpack(z))
  trim_records(now, keep_n, 2 * #ids + 16)
end

-- Publishes '<state> <id> <id> ...' on the queue's channel P:{Q}:finished,
-- which waiters subscribe to.
local function announce(state, ids)
  if #ids == 0 then return end
  local channel = string.sub(SETTINGS, 1, #SETTINGS - #'settings') .. 'finished'
  redis.call('PUBLISH', channel, state .. ' ' .. table.concat(ids, ' '))
end
