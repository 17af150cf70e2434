-- replay.lua: move one dead-letter entry back into its priority stream as a fresh job.
-- KEYS: the four streams ... index (shared/queue.lua)
-- ARGV[1] group (unused)   ARGV[2] dead-letter entry id
-- Returns the new stream entry id (or, when the job waits at a concurrency
-- gate, its id), or false when no such dead-letter entry exists.
-- The job keeps its id, type, payload and max_retries; attempt starts again
-- at 1, enqueued_at is now (the server's clock), and last_error is dropped.
-- INDEX points the job id at the new entry.
local e = redis.call('XRANGE', DEAD, ARGV[2], ARGV[2])
if not e[1] then return false end
local f = {}
local raw = e[1][2]
for i = 1, #raw, 2 do f[raw[i]] = raw[i + 1] end
local fresh = {attempt = '1', max_retries = f.max_retries or '0', enqueued_at = server_now_ms(), last_error = false}
local fields = {}
for _, name in ipairs(ENVELOPE_FIELDS) do
  local v = fresh[name]
  if v == nil then v = f[name] end
  if v then
    fields[#fields + 1] = name
    fields[#fields + 1] = v
  end
end
local priority = f[PRIORITY_FIELD]
if not PRIORITY_INDEX[priority] then priority = PRIORITIES[DEFAULT_PRIORITY] end
redis.call('XDEL', DEAD, ARGV[2])
if not f.id then
  return redis.call('XADD', stream_of(priority), '*', unpack(fields))
end
-- Under a concurrency limit with no free slot the job waits at its gate
-- (shared/gates.lua); the reply is then its id.
return enter_stream(gating_on(), f.id, priority, fields, f.type, f[CONCURRENCY_KEY_FIELD]) or f.id
