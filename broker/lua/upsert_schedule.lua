-- upsert_schedule.lua: create or replace one schedule.
-- KEYS: the queue's keys up to settings (shared/queue.lua), then KEYS[9]
-- the schedules set P:{Q}:schedules (member = name, score = the next tick
-- in ms by the server's clock, +inf while paused) and KEYS[10] the
-- schedule's hash P:{Q}:schedule:<name>.
-- ARGV[1] group   ARGV[2] name   ARGV[3] spec (the timing and missed-tick
-- policy as text)   ARGV[4] the first tick after the server's now, for
-- a new timing   ARGV[5..] the hash's field/value pairs (spec included)
-- A schedule whose spec is unchanged keeps its next tick (upserting at
-- every deploy does not move or repeat a tick), and a paused one stays
-- paused. Its last tick, last job and creation time are kept.
-- Returns {'created' | 'updated', next tick ('inf' while paused)}.
local SCHEDULES, SCHEDULE = KEYS[9], KEYS[10]
local name = ARGV[2]
local old = redis.call('HMGET', SCHEDULE, 'spec', 'paused', 'created_at', 'last_tick', 'last_job', 'last_fired_at')
local now = server_now_ms()
local kept = {'updated_at', now}
kept[#kept + 1] = 'created_at'
kept[#kept + 1] = old[3] or now
for i, f in ipairs({'last_tick', 'last_job', 'last_fired_at'}) do
  if old[i + 3] then
    kept[#kept + 1] = f
    kept[#kept + 1] = old[i + 3]
  end
end
if old[2] then
  kept[#kept + 1] = 'paused'
  kept[#kept + 1] = old[2]
end
redis.call('DEL', SCHEDULE)
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', SCHEDULE, unpack(fields))
redis.call('HSET', SCHEDULE, unpack(kept))
local score = redis.call('ZSCORE', SCHEDULES, name)
if old[2] == '1' then
  redis.call('ZADD', SCHEDULES, 'inf', name)
elseif not (score and old[1] == ARGV[3]) then
  redis.call('ZADD', SCHEDULES, ARGV[4], name)
end
local state = 'updated'
if not old[1] then state = 'created' end
return {state, redis.call('ZSCORE', SCHEDULES, name)}
