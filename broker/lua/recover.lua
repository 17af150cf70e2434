-- recover.lua: take over entries whose consumer stopped renewing them, or dead-letter poison ones.
-- KEYS[1] stream   KEYS[2] dead-letter stream   KEYS[3] stats hash
-- ARGV[1] group    ARGV[2] consumer   ARGV[3] lease (min idle, ms)   ARGV[4] XAUTOCLAIM cursor
-- ARGV[5] most entries to claim   ARGV[6] max deliveries   ARGV[7] dead-letter cap (0 = none)
-- ARGV[8] now (ms)   ARGV[9] priority name of this stream
-- Returns {cursor, claimed entries, deleted, dead, dropped}:
--   claimed entries as XAUTOCLAIM gives them ({id, {field, value, ...}});
--   deleted: pending ids whose entry no longer exists (Redis 7 drops them
--   from the PEL itself and lists them; Redis 6.2 returns them with no
--   fields, and this script acknowledges them);
--   dead: entries delivered more than max-deliveries times, moved to the
--   dead-letter stream instead of being handed out again;
--   dropped: old dead-letter entries removed by the cap.
local stream, dead, stats = KEYS[1], KEYS[2], KEYS[3]
local group, consumer = ARGV[1], ARGV[2]
local max_deliveries = tonumber(ARGV[6])
local cap = tonumber(ARGV[7])
local r = redis.call('XAUTOCLAIM', stream, group, consumer, ARGV[3], ARGV[4], 'COUNT', tonumber(ARGV[5]))
local claimed, deleted, n_dead, dropped = {}, 0, 0, 0
if r[3] then deleted = #r[3] end
for _, e in ipairs(r[2]) do
  local id, fields = e[1], e[2]
  if not fields then
    redis.call('XACK', stream, group, id)
    deleted = deleted + 1
  else
    local p = redis.call('XPENDING', stream, group, id, id, 1)
    local deliveries = 0
    if p[1] then deliveries = tonumber(p[1][4]) end
    if deliveries > max_deliveries then
      local out = {}
      for i = 1, #fields, 2 do
        local f = fields[i]
        if f ~= 'error' and f ~= 'failed_at' and f ~= 'priority' then
          out[#out + 1] = f
          out[#out + 1] = fields[i + 1]
        end
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
      redis.call('XDEL', stream, id)
      redis.call('HINCRBY', stats, 'dead', 1)
      n_dead = n_dead + 1
    else
      claimed[#claimed + 1] = e
    end
  end
end
if #claimed > 0 then redis.call('HINCRBY', stats, 'recovered', #claimed) end
return {r[1], claimed, deleted, n_dead, dropped}
