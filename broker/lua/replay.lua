-- replay.lua: move one dead-letter entry back into its priority stream as a fresh job.
-- KEYS[1] dead-letter stream   KEYS[2..5] the critical, high, normal and low streams
-- ARGV[1] dead-letter entry id   ARGV[2] now (ms)
-- Returns the new stream entry id, or false when no such dead-letter entry exists.
-- The job keeps its id, type, payload and max_retries; attempt starts again at 1.
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if not e[1] then return false end
local f = {}
local raw = e[1][2]
for i = 1, #raw, 2 do f[raw[i]] = raw[i + 1] end
local index = {critical = 2, high = 3, normal = 4, low = 5}
local fields = {}
for _, name in ipairs({'id', 'type', 'payload'}) do
  if f[name] then
    fields[#fields + 1] = name
    fields[#fields + 1] = f[name]
  end
end
fields[#fields + 1] = 'attempt'
fields[#fields + 1] = '1'
fields[#fields + 1] = 'max_retries'
fields[#fields + 1] = f.max_retries or '0'
fields[#fields + 1] = 'enqueued_at'
fields[#fields + 1] = ARGV[2]
local id = redis.call('XADD', KEYS[index[f.priority] or 4], '*', unpack(fields))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
