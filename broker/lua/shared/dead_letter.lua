-- shared/dead_letter.lua: writing a dead letter (needs names.lua,
-- records.lua and dead_removal.lua).

-- Most fields, besides the envelope's own, copied from an entry into its
-- dead letter: a hostile entry can have thousands; the rest are counted in
-- OMITTED_FIELD.
local MAX_EXTRA_DEAD_LETTER_FIELDS = 16

-- Most old dead letters one write removes for the cap (the rest go with
-- the next writes).
local MAX_DEAD_DROPPED_PER_WRITE = 1000

-- Removes the oldest entries of DEAD past `cap` (at most
-- MAX_DEAD_DROPPED_PER_WRITE), and their jobs' INDEX fields; returns how
-- many it removed.
local function drop_old_dead_letters(cap)
  local over = redis.call('XLEN', DEAD) - cap
  if over <= 0 then return 0 end
  return remove_oldest_dead_letters(math.min(over, MAX_DEAD_DROPPED_PER_WRITE))
end

-- Appends an entry to DEAD: the job's id (its `id` field, or the id derived
-- from `priority` and `entry_id` for a fresh job) and the entry's `fields`
-- (a flat list as stored, read from index `from`: every envelope field, at
-- most MAX_EXTRA_DEAD_LETTER_FIELDS others, and OMITTED_FIELD counting the
-- rest; fields the dead letter sets itself are dropped; enqueued_at, when
-- absent, from the entry id), then error (`reason`), failed_at and
-- priority. INDEX points the job id at the dead letter, and waiters hear
-- 'dead <job id>'. Bumps `counter`; with `cap` > 0 trims DEAD to `cap`
-- entries, counting what it drops. Returns how many it dropped.
local function write_dead_letter(fields, from, reason, failed_at, priority, cap, counter, entry_id)
  local known = {[RAW_FIELD] = true}
  for _, f in ipairs(ENVELOPE_FIELDS) do known[f] = true end
  local added = {[ERROR_FIELD] = true, [FAILED_AT_FIELD] = true, [PRIORITY_FIELD] = true}
  local job = field_in(fields, from, 'id') or derived_id(priority, entry_id)
  local out, extra, omitted = {'id', job}, 0, 0
  if not field_in(fields, from, 'enqueued_at') then
    out[3] = 'enqueued_at'
    out[4] = entry_ms(entry_id)
  end
  added['id'] = true
  for i = from, #fields - 1, 2 do
    local f = fields[i]
    if not added[f] then
      if known[f] or extra < MAX_EXTRA_DEAD_LETTER_FIELDS then
        if not known[f] then extra = extra + 1 end
        out[#out + 1] = f
        out[#out + 1] = fields[i + 1]
      else
        omitted = omitted + 1
      end
    end
  end
  if omitted > 0 then
    out[#out + 1] = OMITTED_FIELD
    out[#out + 1] = omitted
  end
  out[#out + 1] = ERROR_FIELD
  out[#out + 1] = reason
  out[#out + 1] = FAILED_AT_FIELD
  out[#out + 1] = failed_at
  out[#out + 1] = PRIORITY_FIELD
  out[#out + 1] = priority
  local dead_id = redis.call('XADD', DEAD, '*', unpack(out))
  redis.call('HSET', INDEX, job, 'dead-' .. dead_id)
  redis.call('HINCRBY', STATS, counter, 1)
  redis.call('HINCRBY', STATS, counter .. ':' .. priority, 1)
  timing_count(failed_at, 'f', 1, priority)
  announce('dead', {job})
  emit(events_cap(), 'dead', {job}, {'error', reason})
  if deps_ended_hook then deps_ended_hook({job}, 'dead') end
  local dropped = 0
  if cap > 0 then
    dropped = drop_old_dead_letters(cap)
    if dropped > 0 then redis.call('HINCRBY', STATS, COUNTER_DEAD_DROPPED, dropped) end
  end
  return dropped
end
