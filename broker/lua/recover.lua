-- recover.lua: take over entries whose consumer stopped renewing them, or dead-letter poison ones.
-- KEYS: the four streams ... index (shared/queue.lua)
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] priority index (1-4) of the stream
-- ARGV[4] lease (min idle, ms)   ARGV[5] XAUTOCLAIM cursor   ARGV[6] most entries to take (at least 1)
-- ARGV[7] max deliveries   ARGV[8] dead-letter cap (0 = none)
-- ARGV[9] group base: the size of the first group of suspects (the
-- worker's slots); optional, 1 when absent
-- ARGV[10] most bytes of entries in a group of suspects (optional, no
-- bound when absent): a group is bounded by bytes as a claim is
-- Returns {cursor, taken, deleted, dead, dropped}:
--   taken: entries now owned by this consumer, to run, as
--   {id, {field, value, ...}, deliveries, suspect}; suspects (suspect = 1)
--   come as a group of their own, their deliveries not yet counted: run the
--   group alone (nothing else beside it), each after start_suspect.lua;
--   deleted: pending ids whose entry no longer exists (Redis 7 drops them
--   from the PEL itself and lists them; Redis 6.2 returns them, and this
--   script acknowledges them);
--   dead: entries already delivered max-deliveries times, moved to the
--   dead-letter stream instead of being handed out again (with the fields
--   shared/dead_letter.lua chooses);
--   dropped: old dead-letter entries removed by the cap.
--
-- Poison jobs and the jobs around them. XAUTOCLAIM counts a delivery for every
-- entry it claims, so if a poison job is claimed in a batch and kills the
-- worker, every entry of the batch gets closer to max-deliveries. Hence:
-- entries are claimed with JUSTID (no delivery counted), and a delivery is
-- counted (XCLAIM) only for the entries taken. An entry recovered before
-- (2 or more deliveries) is a suspect: it crashed its worker twice, or ran
-- beside one that did. Suspects are found by bisection: those delivered d
-- times run in groups of at most base / 2^(d-1) (half the worker's slots
-- after two crashes, a quarter after three, ...), each group alone on its
-- worker, so a crash narrows the poison down to the group it ran in while
-- the other groups finish. Its last delivery (one short of max-deliveries)
-- an entry runs alone, so no job is dead-lettered for its neighbour's
-- crash. A group's deliveries are counted when it starts. Entries not taken
-- are set back to look expired (IDLE = lease), so the next pass takes them.
local stream = stream_at(ARGV[3])
local priority = PRIORITIES[tonumber(ARGV[3])]
local consumer, lease = ARGV[2], ARGV[4]
local want = tonumber(ARGV[6])
local max_deliveries = tonumber(ARGV[7])
local cap = tonumber(ARGV[8])
local group_base = tonumber(ARGV[9] or '1')
local group_bytes_max = tonumber(ARGV[10] or '0')
local group_bytes = 0

-- The bytes of an entry's fields and values.
local function entry_bytes(fields)
  local n = 0
  for _, v in ipairs(fields) do n = n + #v end
  return n
end
-- The time is read before any write (see retry.lua).
local now = server_now_ms()
local taken, deleted, n_dead, dropped = {}, 0, 0, 0
-- The group of suspects this call hands out: their deliveries and most size.
local group_deliveries, group_max = nil, 0

-- Most suspects delivered `d` times that run together.
local function group_limit(d)
  if d + 1 >= max_deliveries then return 1 end
  return math.max(1, math.floor(group_base / 2 ^ (d - 1)))
end

-- A stream with no group yet (no worker has claimed from it) has nothing
-- pending: nothing to recover, and no error to report.
local has_group = pcall(redis.call, 'XINFO', 'CONSUMERS', stream, GROUP)
if not has_group then return {'0-0', {}, 0, 0, 0} end

local cursor = ARGV[5]
-- XAUTOCLAIM scans at most COUNT * 10 pending ids per call; keep scanning
-- (up to 10 calls) so a worker with few free slots still finds expired
-- entries behind a long list of live ones.
for _ = 1, 10 do
  local r = redis.call('XAUTOCLAIM', stream, GROUP, consumer, lease, cursor, 'COUNT', math.max(1, (group_deliveries and group_max or want) - #taken), 'JUSTID')
  cursor = r[1]
  if r[3] then deleted = deleted + #r[3] end
  for _, id in ipairs(r[2]) do
    local p = redis.call('XPENDING', stream, GROUP, id, id, 1)
    local entry = redis.call('XRANGE', stream, id, id)[1]
    if not entry then
      -- Deleted while pending (Redis 6.2 keeps such ids in the PEL).
      if p[1] then redis.call('XACK', stream, GROUP, id) end
      deleted = deleted + 1
    elseif p[1] and cancels_among({field_in(entry[2], 1, 'id') or derived_id(priority, id)}) then
      -- Cancelled while its worker ran it, then the worker died: it ends
      -- cancelled, not run again.
      finish(stream, GROUP, {id})
      gate_release({field_in(entry[2], 1, 'id') or derived_id(priority, id)})
      record_cancelled({field_in(entry[2], 1, 'id') or derived_id(priority, id)},
        {entry_record(entry[2], 1, id, priority, nil, p[1][2])}, now)
    elseif p[1] then
      local deliveries = tonumber(p[1][4])
      local suspect = deliveries >= 2 or deliveries + 1 >= max_deliveries
      if deliveries >= max_deliveries then
        local reason = 'delivered ' .. deliveries .. ' times without finishing (max_deliveries ' ..
          max_deliveries .. '): its worker crashed or lost its lease each time'
        finish(stream, GROUP, {id})
        gate_release({field_in(entry[2], 1, 'id') or derived_id(priority, id)})
        dropped = dropped + write_dead_letter(entry[2], 1, reason, now, priority, cap, COUNTER_DEAD, id)
        n_dead = n_dead + 1
      elseif suspect and #taken == 0 then
        -- The first of a group. Its delivery is counted only when it starts
        -- (start_suspect.lua), once the worker has made room to run the
        -- group alone: a crash while it waits must not count against it.
        redis.call('XCLAIM', stream, GROUP, consumer, 0, id, 'JUSTID')
        taken[#taken + 1] = {id, entry[2], deliveries, 1}
        group_deliveries, group_max = deliveries, group_limit(deliveries)
        group_bytes = entry_bytes(entry[2])
      elseif suspect and group_deliveries == deliveries and #taken < group_max
          and (group_bytes_max <= 0 or group_bytes + entry_bytes(entry[2]) <= group_bytes_max) then
        group_bytes = group_bytes + entry_bytes(entry[2])
        -- Another suspect of this round: into the group.
        redis.call('XCLAIM', stream, GROUP, consumer, 0, id, 'JUSTID')
        taken[#taken + 1] = {id, entry[2], deliveries, 1}
      elseif suspect or group_deliveries or #taken >= want then
        -- Not now: leave it expired for the next pass, no delivery counted.
        redis.call('XCLAIM', stream, GROUP, consumer, 0, id, 'IDLE', lease, 'JUSTID')
      else
        -- Take it: this claim counts the delivery.
        local e = redis.call('XCLAIM', stream, GROUP, consumer, 0, id)[1]
        taken[#taken + 1] = {e[1], e[2], deliveries + 1, 0}
      end
    end
  end
  if cursor == '0-0' then break end
  if group_deliveries then
    if #taken >= group_max or (group_bytes_max > 0 and group_bytes >= group_bytes_max) then break end
  elseif #taken >= want then
    break
  end
end
if #taken > 0 then
  redis.call('HINCRBY', STATS, COUNTER_RECOVERED, #taken)
  local cap = events_cap()
  if cap > 0 then
    local ids = {}
    for _, t in ipairs(taken) do ids[#ids + 1] = field_in(t[2], 1, 'id') or derived_id(priority, t[1]) end
    emit(cap, 'recovered', ids, {'worker', consumer})
  end
end
return {cursor, taken, deleted, n_dead, dropped}
