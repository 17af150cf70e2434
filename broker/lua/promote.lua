-- promote.lua: move due jobs from the delayed set into their priority streams.
-- KEYS: the four streams ... retention (shared/queue.lua)
-- ARGV[1] group (unused)   ARGV[2] most members to move in this call
-- Returns {moved, next, now, events, records, outbox}: next is the run-at (ms) of the
-- earliest job still delayed, or -1 when the set is empty; now is the
-- server's time (ms), which decided what was due (shared/clock.lua), for
-- the caller's sleep; events is the queue's events cap (0: off), which
-- workers use for the events they write themselves (started); records is
-- 1 when the queue keeps finished jobs' records (workers build a record's
-- fields only then); outbox is how many outcomes wait in P:{Q}:outbox to
-- be applied in other queues (the promoter applies them).
-- A member is a job id whose envelope (JSON) is its SCHEDULED value; a
-- member that is itself a JSON object is an envelope written before
-- version 0.6, promoted the same way (shared/admit.lua). A job under a
-- concurrency limit with no free slot waits at its gate instead
-- (shared/gates.lua). Then the jobs parked at a rate gate whose wake is
-- due go on as its limit allows (shared/rates.lua); next counts the
-- wakes. It also removes up to 100 expired records (shared/records.lua).
local now = server_now_ms()
local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local on = gating_on()
for _, member in ipairs(due) do
  -- Removed first: under maxmemory (noeviction) Redis refuses a script's
  -- first write that may grow memory, but not the writes after one, so
  -- due jobs still move while Redis is full (see retry.lua).
  redis.call('ZREM', DELAYED, member)
  if string.sub(member, 1, 1) == '{' then
    add_envelope(nil, member)
  else
    local json = redis.call('HGET', SCHEDULED, member)
    -- Under a concurrency limit with no free slot it waits at its gate,
    -- its envelope staying in SCHEDULED (shared/gates.lua).
    local waits = false
    if on and json then
      local ok, env = pcall(cjson.decode, json)
      if ok and type(env) == 'table' then
        waits = not gate_enter(true, member, env.type, env[CONCURRENCY_KEY_FIELD])
      end
    end
    if not waits then
      redis.call('HDEL', SCHEDULED, member)
      add_envelope(member, json)
    end
  end
end
-- The waits at rate gates whose wake is due (shared/rates.lua).
local woke = rate_wakes_due(now, tonumber(ARGV[2]), on)
-- Records expire here too, a few per call, so an idle queue's go.
expire_records(now, 100)
local first = redis.call('ZRANGE', DELAYED, 0, 0, 'WITHSCORES')
local next_at = -1
if first[2] then next_at = tonumber(first[2]) end
local wake = redis.call('ZRANGE', RATE_WAKES, 0, 0, 'WITHSCORES')
if wake[2] and (next_at < 0 or tonumber(wake[2]) < next_at) then next_at = tonumber(wake[2]) end
local keep_ms, keep_n = retention()
local records = 0
if keep_ms > 0 and keep_n > 0 then records = 1 end
return {#due + woke, next_at, now, events_cap(), records, redis.call('LLEN', QUEUE_BASE .. 'outbox')}
