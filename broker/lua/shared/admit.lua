-- shared/admit.lua (needs names.lua): a job whose envelope (JSON, the
-- SCHEDULED form: the entry's fields and `priority`) was kept outside the
-- streams, added to its priority stream.

-- Adds the job `job` (nil for a member written before 0.6, whose envelope
-- is the member itself) with envelope `json` to its priority stream: the
-- new entry carries the job's id, and INDEX points the id at it. Anything
-- that is not an envelope goes to the normal stream as an entry with one
-- field, RAW_FIELD, so a worker dead-letters it with a reason.
local function add_envelope(job, json)
  local ok, env = false, nil
  if json then ok, env = pcall(cjson.decode, json) end
  if ok and type(env) == 'table' then
    local fields = {}
    for _, name in ipairs(ENVELOPE_FIELDS) do
      local v = env[name]
      if name == 'id' and job and type(v) ~= 'string' then v = job end
      if type(v) == 'string' or type(v) == 'number' then
        fields[#fields + 1] = name
        fields[#fields + 1] = v
      end
    end
    -- Let back from a rate gate's wait: first in line for its slot
    -- (shared/rates.lua).
    if #fields > 0 and type(env.rate_gate) == 'string' then
      fields[#fields + 1] = 'rate_gate'
      fields[#fields + 1] = env.rate_gate
    end
    if #fields == 0 then fields = {RAW_FIELD, json} end
    local priority = env[PRIORITY_FIELD]
    if not PRIORITY_INDEX[priority] then priority = PRIORITIES[DEFAULT_PRIORITY] end
    local eid = redis.call('XADD', stream_of(priority), '*', unpack(fields))
    local id = env.id
    if type(id) ~= 'string' then id = job end
    if id then redis.call('HSET', INDEX, id, derived_id(priority, eid)) end
  else
    local raw = json or ('the scheduled job ' .. tostring(job) .. ' has no envelope')
    redis.call('XADD', STREAMS[DEFAULT_PRIORITY], '*', RAW_FIELD, raw)
  end
end
