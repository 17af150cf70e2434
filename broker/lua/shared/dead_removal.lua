-- shared/dead_removal.lua (needs names.lua): removing dead letters, with
-- the INDEX fields that point their jobs' ids at them.

-- Deletes the oldest `n` (at least 1) entries of DEAD and their jobs'
-- INDEX fields (only those still pointing at them); returns how many it
-- deleted (0 when DEAD is empty).
-- Set by shared/deps.lua in the scripts that include it: the jobs whose
-- dead letters are removed tell the jobs still waiting for them.
local dead_removed_hook = nil

local function remove_oldest_dead_letters(n)
  local old = redis.call('XRANGE', DEAD, '-', '+', 'COUNT', n)
  if #old == 0 then return 0 end
  local ids, jobs = {}, {}
  for _, e in ipairs(old) do
    ids[#ids + 1] = e[1]
    local job = field_in(e[2], 1, 'id')
    if job and redis.call('HGET', INDEX, job) == 'dead-' .. e[1] then jobs[#jobs + 1] = job end
  end
  if #jobs > 0 then redis.call('HDEL', INDEX, unpack(jobs)) end
  local n = redis.call('XDEL', DEAD, unpack(ids))
  if dead_removed_hook and #jobs > 0 then dead_removed_hook(jobs, 'dead letter removed') end
  return n
end
