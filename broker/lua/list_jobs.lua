-- list_jobs.lua: one page of a queue's jobs in one state (reads only).
-- KEYS: the four streams ... progress (shared/queue.lua)
-- ARGV[1] group   ARGV[2] state: queued | running | scheduled | waiting | finished | dead
-- ARGV[3] cursor, '' for the first page (as returned by the last page)
-- ARGV[4] limit (1 or more)
-- Returns {next cursor or '', item, ...}, each item per state:
--   queued:    {priority index, entry id, {field, value, ...}}
--   running:   {priority index, entry id, {field, value, ...} or false,
--               consumer, deliveries, ms since its lease was renewed,
--               progress JSON or ''}
--   scheduled: {job id, run-at ms, envelope JSON or false}
--   waiting:   {job id, 'c', gate, envelope JSON or false, the gate's limit,
--               its slots held, 0} at a concurrency gate, or {job id, 'r',
--               gate, envelope JSON or false, its limit text ('' for a hold),
--               its next slot (ms), jobs parked there} at a rate gate
--   finished:  {job id, record JSON}
--   dead:      {entry id, {field, value, ...}}
-- Order: queued and running in claim order (priority, then entry id);
-- scheduled by run-at; waiting by gate, oldest first within one;
-- finished newest expiry first; dead newest first.
-- Cursors: '<priority index>:<entry id>' (queued, running: after that
-- entry), an offset (scheduled, finished), '<c|r>:<offset>:<gate>'
-- (waiting: from that place in that gate's list), an entry id (dead:
-- before it).
-- Each page costs O(limit + log n): XRANGE / XPENDING from the cursor, a
-- rank range of a sorted set, or XREVRANGE.
local state, cursor, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])
local out = {''}

-- Walks the streams from the cursor; `read(index, stream, after, count)`
-- returns up to `count` items after entry id `after` ('' = from the start
-- of what the state holds), each {entry id, item}.
local function over_streams(read)
  local from, after = 1, ''
  if cursor ~= '' then
    local i, id = string.match(cursor, '^(%d):(%d+%-%d+)$')
    if not i then return redis.error_reply('ferry: bad cursor') end
    from, after = tonumber(i), id
  end
  local items = {}
  for index = from, 4 do
    local want = limit + 1 - #items
    if want <= 0 then break end
    local got = read(index, STREAMS[index], index == from and after or '', want)
    for _, it in ipairs(got) do items[#items + 1] = {index, it[1], it[2]} end
  end
  for i = 1, math.min(limit, #items) do out[#out + 1] = items[i][3] end
  if #items > limit then out[1] = items[limit][1] .. ':' .. items[limit][2] end
  return out
end

if state == 'queued' then
  return over_streams(function(index, stream, after, count)
    if redis.call('EXISTS', stream) == 0 then return {} end
    local st = group_state(stream, GROUP)
    -- Queued = after the group's last-delivered id (entries at or before
    -- it are running, or finished and not trimmed yet).
    local start = '-'
    if st and st.last and st.last ~= '0-0' then start = st.last end
    if after ~= '' and (start == '-' or id_less(start, after)) then start = after end
    if start ~= '-' then start = '(' .. start end
    local got = {}
    for _, e in ipairs(redis.call('XRANGE', stream, start, '+', 'COUNT', count)) do
      got[#got + 1] = {e[1], {index, e[1], e[2]}}
    end
    return got
  end)
elseif state == 'running' then
  return over_streams(function(index, stream, after, count)
    if not group_state(stream, GROUP) then return {} end
    local start = after == '' and '-' or '(' .. after
    local got = {}
    for _, p in ipairs(redis.call('XPENDING', stream, GROUP, start, '+', count)) do
      local e = redis.call('XRANGE', stream, p[1], p[1])[1]
      local fields, progress = false, ''
      if e then
        fields = e[2]
        local id = field_in(fields, 1, 'id') or derived_id(PRIORITIES[index], p[1])
        progress = redis.call('HGET', PROGRESS, id) or ''
      end
      got[#got + 1] = {p[1], {index, p[1], fields, p[2], p[4], p[3], progress}}
    end
    return got
  end)
elseif state == 'scheduled' or state == 'finished' then
  local offset = 0
  if cursor ~= '' then
    local digits = string.match(cursor, '^(%d+)$')
    if not digits then return redis.error_reply('ferry: bad cursor') end
    offset = tonumber(digits)
  end
  local members
  if state == 'scheduled' then
    members = redis.call('ZRANGE', DELAYED, offset, offset + limit, 'WITHSCORES')
  else
    -- ZRANGE ... REV (6.2+), not ZREVRANGE: the ACL the README gives has +zrange.
    members = redis.call('ZRANGE', RETENTION, offset, offset + limit, 'REV', 'WITHSCORES')
  end
  local now = server_now_ms()
  local n = 0
  for i = 1, #members, 2 do
    local id, score = members[i], members[i + 1]
    -- Expired records (not trimmed yet) count as gone, and so does every
    -- record after one: newest expiry first, they all expired. No further
    -- page, then.
    if state == 'finished' and tonumber(score) <= now then break end
    n = n + 1
    if n > limit then out[1] = tostring(offset + limit) break end
    if state == 'scheduled' then
      -- A member from before 0.6 is the envelope JSON itself.
      local envelope = false
      if string.sub(id, 1, 1) == '{' then envelope = id else envelope = redis.call('HGET', SCHEDULED, id) or false end
      out[#out + 1] = {id, score, envelope}
    else
      local record = redis.call('HGET', RESULTS, id)
      if record then out[#out + 1] = {id, record} end
    end
  end
  return out
elseif state == 'waiting' then
  -- Waiting at a concurrency gate (shared/gates.lua: the gates holding
  -- slots, since a gate with waiting jobs is full) or parked at a rate
  -- gate (shared/rates.lua: every gate with parked jobs has a wake), by
  -- kind ('c', then 'r'), gate name, and place in the gate's list.
  local kind, offset, gate = 'c', 0, ''
  if cursor ~= '' then
    local k, o, g = string.match(cursor, '^([cr]):(%d+):(.+)$')
    if not k then return redis.error_reply('ferry: bad cursor') end
    kind, offset, gate = k, tonumber(o), g
  end
  local now = server_now_ms()
  local n = 0
  for _, k in ipairs({'c', 'r'}) do
    if k == 'r' and kind == 'c' then gate, offset = '', 0 end
    if k >= kind then
      local names
      if k == 'c' then names = redis.call('HKEYS', GATES) else names = redis.call('ZRANGE', RATE_WAKES, 0, -1) end
      table.sort(names)
      for _, g in ipairs(names) do
        if g >= gate then
          local from = 0
          if g == gate then from = offset end
          local list = (k == 'c' and gate_list(g)) or rate_wait_list(g)
          local ids = redis.call('LRANGE', list, from, from + limit - n)
          local info
          if k == 'c' then
            info = {gate_limit(g) or 0, tonumber(redis.call('HGET', GATES, g)) or 0}
          else
            local text = redis.call('HGET', RATES, g)
            if not text and string.sub(g, 1, 4) == 'key:' then text = redis.call('HGET', RATES, 'key') end
            local _, next_at = rate_check(g, now)
            info = {text or '', next_at or now, redis.call('LLEN', list)}
          end
          for i, id in ipairs(ids) do
            n = n + 1
            if n > limit then
              out[1] = k .. ':' .. (from + i - 1) .. ':' .. g
              return out
            end
            out[#out + 1] = {id, k, g, redis.call('HGET', SCHEDULED, id) or false, info[1], info[2], info[3] or 0}
          end
        end
      end
    end
  end
  return out
elseif state == 'dead' then
  local start = '+'
  if cursor ~= '' then
    if not string.match(cursor, '^%d+%-%d+$') then return redis.error_reply('ferry: bad cursor') end
    start = '(' .. cursor
  end
  local got = redis.call('XREVRANGE', DEAD, start, '-', 'COUNT', limit + 1)
  for i = 1, math.min(limit, #got) do out[#out + 1] = {got[i][1], got[i][2]} end
  if #got > limit then out[1] = got[limit][1] end
  return out
end
return redis.error_reply('ferry: unknown state ' .. tostring(state))
