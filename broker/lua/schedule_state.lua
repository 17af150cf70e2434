-- schedule_state.lua: remove, pause or resume one schedule, or record a
-- job triggered by hand as its last.
-- KEYS: as upsert_schedule.lua (KEYS[9] the schedules set, KEYS[10] the
-- schedule's hash).
-- ARGV[1] group   ARGV[2] name   ARGV[3] 'remove', 'pause', 'resume' or
-- 'triggered'
-- ARGV[4] (resume) the first tick after the server's now; (triggered) the
-- job's id, kept as `last_job` with `last_fired_at` the server's now
-- A removed or paused schedule fires no more from this call on: the
-- firing script checks the tick it fires is still the set's score.
-- Returns 1, or 0 when there is no such schedule.
local SCHEDULES, SCHEDULE = KEYS[9], KEYS[10]
local name, op = ARGV[2], ARGV[3]
if redis.call('EXISTS', SCHEDULE) == 0 then
  redis.call('ZREM', SCHEDULES, name)
  return 0
end
if op == 'remove' then
  redis.call('DEL', SCHEDULE)
  redis.call('ZREM', SCHEDULES, name)
elseif op == 'pause' then
  redis.call('HSET', SCHEDULE, 'paused', '1')
  redis.call('ZADD', SCHEDULES, 'inf', name)
elseif op == 'resume' then
  if redis.call('HGET', SCHEDULE, 'paused') == '1' then
    redis.call('HDEL', SCHEDULE, 'paused')
    redis.call('ZADD', SCHEDULES, ARGV[4], name)
  end
elseif op == 'triggered' then
  redis.call('HSET', SCHEDULE, 'last_job', ARGV[4], 'last_fired_at', server_now_ms())
else
  error('ferry: bad schedule operation ' .. tostring(op))
end
return 1
