-- register_remote.lua: a job of another queue will wait for jobs of this
-- one (cross-queue dependencies, shared/deps.lua). Run on the
-- dependencies' queue before the job is written on its own, so a
-- dependency is always confirmed to exist before anything waits for it
-- (no cycle can form across queues either).
-- KEYS: the four streams ... events (shared/queue.lua)
-- ARGV[1] group   ARGV[2] the waiting job, '<queue>/<id>'   ARGV[3..] ids
-- of this queue's jobs it depends on.
-- Returns each dependency's state: 'succeeded', 'dead', 'cancelled',
-- 'pending' (now linked: its outcome will be sent to the job's queue
-- through P:{Q}:outbox) or 'unknown'.
local now = server_now_ms()
local member = '@' .. ARGV[2]
local out = {}
for j = 3, #ARGV do
  local dep = ARGV[j]
  local st = dep_state(dep, now) or 'unknown'
  if st == 'pending' or st == 'dead' then
    -- (A dead one is linked too, in case the job waits for its replay.)
    if redis.call('SADD', dependents_of(dep), member) == 1 then
      redis.call('HINCRBY', DEPENDENTS, dep, 1)
    end
  end
  out[#out + 1] = st
end
return out
