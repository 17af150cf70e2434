-- fire_schedule.lua: enqueue the jobs of one schedule's due ticks and move
-- it to its next tick, once fleet-wide.
-- KEYS: the queue's keys up to events (shared/queue.lua), then KEYS[18] the
-- schedules set P:{Q}:schedules and KEYS[19] the schedule's hash.
-- ARGV[1] group   ARGV[2] name   ARGV[3] the tick the caller read as due
-- (the set's score)   ARGV[4] the spec the caller computed ticks from
-- ARGV[5] the next tick (the first after the server's now)
-- ARGV[6..] the ticks to enqueue a job for (none when all were missed
-- and the policy skips them)
-- Every worker runs this for a due schedule; only the first call for a
-- tick finds the set's score equal to it (the others, and calls after a
-- remove, pause or change of timing, change nothing), so each tick
-- enqueues at most one job, named sched:<name>:<tick>. A tick is never
-- fired before the server's clock reaches it.
-- Returns {'fired', ids}, {'moved'} (not this caller's tick any more),
-- {'changed'} (the spec was replaced) or {'early', ms}.
local SCHEDULES, SCHEDULE = KEYS[18], KEYS[19]
local name, tick = ARGV[2], tonumber(ARGV[3])
local score = tonumber(redis.call('ZSCORE', SCHEDULES, name))
if score ~= tick then return {'moved'} end
local def = redis.call('HMGET', SCHEDULE, 'spec', 'type', 'payload', 'priority', 'max_retries')
if def[1] ~= ARGV[4] then return {'changed'} end
local now = server_now_ms()
if tick > now then return {'early', tick - now} end
local index = PRIORITY_INDEX[def[4]] or DEFAULT_PRIORITY
local ids = {}
local on = gating_on()
for i = 6, #ARGV do
  local id = 'sched:' .. name .. ':' .. ARGV[i]
  if redis.call('HEXISTS', INDEX, id) == 0 and redis.call('HEXISTS', SCHEDULED, id) == 0 then
    -- Under a concurrency limit of its type with no free slot, the job
    -- waits at its gate (shared/gates.lua).
    enter_stream(on, id, PRIORITIES[index], {'id', id, 'type', def[2], 'payload', def[3],
      'attempt', '1', 'max_retries', def[5], 'enqueued_at', now}, def[2], nil)
    ids[#ids + 1] = id
  end
end
redis.call('ZADD', SCHEDULES, ARGV[5], name)
local last = {'last_fired_at', now}
if #ARGV >= 6 then
  last[#last + 1] = 'last_tick'
  last[#last + 1] = ARGV[#ARGV]
end
if #ids > 0 then
  last[#last + 1] = 'last_job'
  last[#last + 1] = ids[#ids]
end
redis.call('HSET', SCHEDULE, unpack(last))
emit(events_cap(), 'enqueued', ids, {})
return {'fired', ids}
