-- repair_gates.lua: free the concurrency slots of jobs that are gone
-- without ending through Ferry (an entry deleted by hand, a stream key
-- removed), so a limit never leaks (shared/gates.lua).
-- KEYS: the four streams ... scheduled (shared/queue.lua)
-- ARGV[1] group (unused)   ARGV[2] HSCAN cursor of P:{Q}:gated   ARGV[3] COUNT
-- Returns {next cursor ('0' when the scan is done), slots freed}.
-- A job that holds all its slots is in its stream (INDEX names its entry);
-- one that waits at a gate has its envelope in SCHEDULED. A job that is
-- neither is gone: gate_release frees its slots and lets the next in.
-- No job under a limit (the common case): nothing to scan.
if redis.call('HLEN', GATED) == 0 then return {'0', 0} end
local r = redis.call('HSCAN', GATED, ARGV[2], 'COUNT', tonumber(ARGV[3]) or 100)
local gone = {}
local rows = r[2]
for i = 1, #rows, 2 do
  local job, held, gates = rows[i], gate_record(rows[i + 1])
  local alive
  if held < #gates then
    alive = redis.call('HEXISTS', SCHEDULED, job) == 1
  else
    local loc = redis.call('HGET', INDEX, job) or job
    local kind, eid = string.match(loc, '^(%a+)%-(%d+%-%d+)$')
    local index = kind and PRIORITY_INDEX[kind]
    alive = redis.call('ZSCORE', DELAYED, job) ~= false
    if not alive and index then
      local found = redis.pcall('XRANGE', STREAMS[index], eid, eid)
      alive = type(found) == 'table' and not found.err and found[1] ~= nil
    end
  end
  if not alive then gone[#gone + 1] = job end
end
gate_release(gone)
return {r[1], #gone}
