-- recover.lua: take over entries whose consumer stopped renewing them, or dead-letter poison ones.
-- (shared/group_state.lua and shared/remove_done.lua are prepended.)
-- KEYS[1] stream   KEYS[2] dead-letter stream   KEYS[3] stats hash
-- ARGV[1] group    ARGV[2] consumer   ARGV[3] lease (min idle, ms)   ARGV[4] XAUTOCLAIM cursor
-- ARGV[5] most entries to take (at least 1)   ARGV[6] max deliveries   ARGV[7] dead-letter cap (0 = none)
-- ARGV[8] now (ms)   ARGV[9] priority name of this stream
-- Returns {cursor, taken, deleted, dead, dropped}:
--   taken: entries now owned by this consumer, to run, as
--   {id, {field, value, ...}, deliveries, suspect}; a suspect (suspect = 1)
--   comes alone, its delivery not yet counted: run it alone, after
--   start_suspect.lua;
--   deleted: pending ids whose entry no longer exists (Redis 7 drops them
--   from the PEL itself and lists them; Redis 6.2 returns them, and this
--   script acknowledges them);
--   dead: entries already delivered max-deliveries times, moved to the
--   dead-letter stream instead of being handed out again (the envelope's
--   fields, at most 16 others, and 'omitted_fields' counting the rest);
--   dropped: old dead-letter entries removed by the cap.
--
-- Poison jobs and the jobs around them. XAUTOCLAIM counts a delivery for every
-- entry it claims, so if a poison job is claimed in a batch and kills the
-- worker, every entry of the batch gets closer to max-deliveries. Hence:
-- entries are claimed with JUSTID (no delivery counted), and a delivery is
-- counted (XCLAIM) only for the entries taken. An entry recovered before
-- (2 or more deliveries), or one more delivery from max-deliveries, is a
-- suspect: it is taken only alone, one per call, and the worker runs it
-- alone; its delivery is counted when it starts. Entries not taken are set back to look
-- expired (IDLE = lease), so the next recovery pass takes them.
local stream, dead, stats = KEYS[1], KEYS[2], KEYS[3]
local group, consumer, lease = ARGV[1], ARGV[2], ARGV[3]
local want = tonumber(ARGV[5])
local max_deliveries = tonumber(ARGV[6])
local cap = tonumber(ARGV[7])
local known = {id = true, type = true, payload = true, attempt = true, max_retries = true,
  enqueued_at = true, last_error = true, raw = true}
local MAX_EXTRA = 16
local taken, deleted, n_dead, dropped = {}, 0, 0, 0
local suspect_taken = false

local function dead_letter(id, fields, deliveries)
  local out, extra, omitted = {}, 0, 0
  for i = 1, #fields, 2 do
    local f = fields[i]
    if f ~= 'error' and f ~= 'failed_at' and f ~= 'priority' then
      if known[f] or extra < MAX_EXTRA then
        if not known[f] then extra = extra + 1 end
        out[#out + 1] = f
        out[#out + 1] = fields[i + 1]
      else
        omitted = omitted + 1
      end
    end
  end
  if omitted > 0 then
    out[#out + 1] = 'omitted_fields'
    out[#out + 1] = omitted
  end
  out[#out + 1] = 'error'
  out[#out + 1] = 'delivered ' .. deliveries .. ' times without finishing (max_deliveries ' ..
    max_deliveries .. '): its worker crashed or lost its lease each time'
  out[#out + 1] = 'failed_at'
  out[#out + 1] = ARGV[8]
  out[#out + 1] = 'priority'
  out[#out + 1] = ARGV[9]
  redis.call('XADD', dead, '*', unpack(out))
  if cap > 0 then
    local d = redis.call('XTRIM', dead, 'MAXLEN', cap)
    if d > 0 then
      dropped = dropped + d
      redis.call('HINCRBY', stats, 'dead_dropped', d)
    end
  end
  redis.call('XACK', stream, group, id)
  remove_done(stream, group, {id})
  redis.call('HINCRBY', stats, 'dead', 1)
  n_dead = n_dead + 1
end

local cursor = ARGV[4]
-- XAUTOCLAIM scans at most COUNT * 10 pending ids per call; keep scanning
-- (up to 10 calls) so a worker with few free slots still finds expired
-- entries behind a long list of live ones.
for _ = 1, 10 do
  local r = redis.call('XAUTOCLAIM', stream, group, consumer, lease, cursor, 'COUNT', want - #taken, 'JUSTID')
  cursor = r[1]
  if r[3] then deleted = deleted + #r[3] end
  for _, id in ipairs(r[2]) do
    local p = redis.call('XPENDING', stream, group, id, id, 1)
    local entry = redis.call('XRANGE', stream, id, id)[1]
    if not entry then
      -- Deleted while pending (Redis 6.2 keeps such ids in the PEL).
      if p[1] then redis.call('XACK', stream, group, id) end
      deleted = deleted + 1
    elseif p[1] then
      local deliveries = tonumber(p[1][4])
      local suspect = deliveries >= 2 or deliveries + 1 >= max_deliveries
      if deliveries >= max_deliveries then
        dead_letter(id, entry[2], deliveries)
      elseif suspect_taken or (suspect and #taken > 0) then
        -- Not now: leave it expired for the next pass, no delivery counted.
        redis.call('XCLAIM', stream, group, consumer, 0, id, 'IDLE', lease, 'JUSTID')
      elseif suspect then
        -- Take it alone, but count its delivery only when it starts
        -- (start_suspect.lua), once the worker has made room to run it alone:
        -- a crash while it waits must not count against it.
        redis.call('XCLAIM', stream, group, consumer, 0, id, 'JUSTID')
        taken[#taken + 1] = {id, entry[2], deliveries, 1}
        suspect_taken = true
      else
        -- Take it: this claim counts the delivery.
        local e = redis.call('XCLAIM', stream, group, consumer, 0, id)[1]
        taken[#taken + 1] = {e[1], e[2], deliveries + 1, 0}
      end
    end
  end
  if #taken >= want or suspect_taken or cursor == '0-0' then break end
end
if #taken > 0 then redis.call('HINCRBY', stats, 'recovered', #taken) end
return {cursor, taken, deleted, n_dead, dropped}
