-- remove_consumer.lua: a worker that stops cleanly removes its own consumer
-- from the group of every stream where it owns no pending entry, so that
-- XINFO CONSUMERS lists live workers (and gone ones that still own work).
-- KEYS: the four streams (shared/queue.lua)
-- ARGV[1] group   ARGV[2] this consumer
-- Returns the number of streams it still owns entries in (it stays listed
-- there; recovery hands those entries on after the lease). Checking and
-- deleting happen in one script, so no entry can become its own in between.
local me = ARGV[2]
local kept = 0
for _, stream in ipairs(STREAMS) do
  local ok, mine = pcall(redis.call, 'XPENDING', stream, GROUP, '-', '+', 1, me)
  if ok then
    if #mine == 0 then
      redis.call('XGROUP', 'DELCONSUMER', stream, GROUP, me)
    else
      kept = kept + 1
    end
  end
end
return kept
