-- due_schedules.lua: the schedules whose next tick has come.
-- KEYS: the queue's keys up to settings, then KEYS[9] the schedules set
-- P:{Q}:schedules.
-- ARGV[1] group   ARGV[2] how many at most
-- Returns {now, earliest, name, tick, name, tick, ...}: the server's time
-- (ms), the earliest tick not yet due ('' when none is), and the due
-- schedules with the tick each is due for, earliest first.
local SCHEDULES = KEYS[9]
local now = server_now_ms()
local due = redis.call('ZRANGEBYSCORE', SCHEDULES, '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local next = redis.call('ZRANGEBYSCORE', SCHEDULES, '(' .. now, '(inf', 'WITHSCORES', 'LIMIT', 0, 1)
local out = {now, next[2] or ''}
for i = 1, #due do out[#out + 1] = due[i] end
return out
