-- shared/records.lua (needs settings.lua, timing.lua and events.lua): finished jobs' records, and the
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
-- settings say, then trims a few expired or surplus records. `keep_ms`
-- and `keep_n`, when given, are the settings already read;
-- `lifetimes[i]`, when given, is job i's own retention in ms (its enqueue
-- option: it replaces keep_ms; 0 keeps no record). A record's expiry is
-- fixed when it is written. The count keep_n bounds every record: 0 keeps
-- none, and older records go too, a few at a time.
local function keep_records(ids, rows, now, keep_ms, keep_n, lifetimes)
  if not keep_ms then keep_ms, keep_n = retention() end
  if keep_n < 0 then keep_n = 0 end
  if keep_n > 0 and (keep_ms > 0 or lifetimes) then
    lifetimes = lifetimes or {}
    local h, z = {}, {}
    for i, id in ipairs(ids) do
      local ms = lifetimes[i] or keep_ms
      if ms > 0 then
        h[#h + 1] = id
        h[#h + 1] = rows[i]
        z[#z + 1] = now + ms
        z[#z + 1] = id
      end
    end
    if #h > 0 then
      redis.call('HSET', RESULTS, unpack(h))
      redis.call('ZADD', RETENTION, unpack(z))
    end
  end
  trim_records(now, keep_n, 2 * #ids + 16)
end

-- Forgets the progress of jobs `ids`, which ended (one HLEN while no
-- running job reports progress).
local function forget_progress(ids)
  if #ids > 0 and redis.call('HLEN', PROGRESS) > 0 then
    redis.call('HDEL', PROGRESS, unpack(ids))
  end
end

-- Publishes `text`, '<state> <id> <id> ...', on the queue's channel
-- P:{Q}:finished, which waiters subscribe to.
local function publish_notice(text)
  local channel = QUEUE_BASE .. 'finished'
  redis.call('PUBLISH', channel, text)
end

-- Publishes '<state> <id> <id> ...' (publish_notice) and forgets the
-- jobs' progress.
local function announce(state, ids)
  if #ids == 0 then return end
  forget_progress(ids)
  publish_notice(state .. ' ' .. table.concat(ids, ' '))
end

-- Trims up to `most` expired or surplus records (for callers that write
-- none: an idle queue's records still expire).
local function expire_records(now, most)
  local _, keep_n = retention()
  trim_records(now, math.max(keep_n, 0), most)
end

-- True when job `id` has a record that has not expired.
local function has_record(id, now)
  if redis.call('HEXISTS', RESULTS, id) == 0 then return false end
  local expires = tonumber(redis.call('ZSCORE', RETENTION, id))
  return not (expires and expires <= now)
end

-- The set (table of id -> true) of `ids` with a cancellation asked for,
-- or nil when none is (one HLEN: nothing more on the hot path).
local function cancels_among(ids)
  if #ids == 0 or redis.call('HLEN', CANCELS) == 0 then return nil end
  local flags = redis.call('HMGET', CANCELS, unpack(ids))
  local set = nil
  for i, f in ipairs(flags) do
    if f then
      set = set or {}
      set[ids[i]] = true
    end
  end
  return set
end

-- A JSON number from a decimal text (an entry's field), or null.
local function json_count(v)
  if type(v) == 'number' then return string.format('%d', v) end
  if type(v) == 'string' and #v <= 19 and string.match(v, '^%d+$') then return v end
  return 'null'
end

-- A JSON string, or null.
local function json_text(v)
  if type(v) ~= 'string' then return 'null' end
  return cjson.encode(v)
end

-- The members of a finished job's record, as a worker writes them
-- (record_fields in consumer/settle.rs, without the result): `get(name)`
-- reads a field of the job's envelope; `started_at` (ms) and `worker` are
-- nil where no attempt started.
local function record_members(get, priority, started_at, worker)
  return '"type":' .. json_text(get('type')) ..
    ',"priority":' .. json_text(priority) ..
    ',"attempt":' .. json_count(get('attempt')) ..
    ',"max_retries":' .. json_count(get('max_retries')) ..
    ',"enqueued_at":' .. json_count(get('enqueued_at')) ..
    ',"started_at":' .. json_count(started_at) ..
    ',"worker":' .. json_text(worker)
end

-- record_members from stream entry `entry_id`'s flat field list, read
-- from index `from` (a fresh job's enqueued_at is its entry id's time).
local function entry_record(fields, from, entry_id, priority, started_at, worker)
  local get = function(name)
    local v = field_in(fields, from, name)
    if v == nil and name == 'enqueued_at' then return entry_ms(entry_id) end
    return v
  end
  return record_members(get, priority, started_at, worker)
end

-- Ends jobs `ids` as cancelled (their entries already removed): records
-- with `fields` (JSON members: record_members, entry_record, or a worker's
-- record; '' only where nothing is known of the job), the counter, the
-- notice; forgets their cancellation requests and index fields.
-- Set by shared/deps.lua in the scripts that include it: the jobs that
-- end cancelled or dead tell the jobs waiting for them.
local deps_ended_hook = nil

local function record_cancelled(ids, fields, now)
  if #ids == 0 then return end
  local rows = {}
  for i, id in ipairs(ids) do
    local f = fields[i] or ''
    -- A cancelled job has no result, whatever its handler returned (the
    -- worker puts "result" last; a quote inside a JSON string is escaped,
    -- so the first ',"result":' is the member).
    local cut = string.find(f, ',"result":', 1, true)
    if cut then f = string.sub(f, 1, cut - 1) end
    if f == '' then
      rows[i] = '{"state":"cancelled","finished_at":' .. now .. '}'
    else
      rows[i] = '{"state":"cancelled","finished_at":' .. now .. ',' .. f .. '}'
    end
  end
  redis.call('HDEL', CANCELS, unpack(ids))
  redis.call('HDEL', INDEX, unpack(ids))
  redis.call('HINCRBY', STATS, COUNTER_CANCELLED, #ids)
  timing_count(now, 'c', #ids)
  keep_records(ids, rows, now)
  announce('cancelled', ids)
  emit(events_cap(), 'cancelled', ids, {})
  if deps_ended_hook then deps_ended_hook(ids, 'cancelled') end
end
