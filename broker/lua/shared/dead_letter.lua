-- shared/dead_letter.lua: writing a dead letter (needs names.lua).

-- Most fields, besides the envelope's own, copied from an entry into its
-- dead letter: a hostile entry can have thousands; the rest are counted in
-- OMITTED_FIELD.
local MAX_EXTRA_DEAD_LETTER_FIELDS = 16

-- Appends an entry to DEAD: the entry's `fields` (a flat list as stored,
-- read from index `from`: every envelope field, at most
-- MAX_EXTRA_DEAD_LETTER_FIELDS others, and OMITTED_FIELD counting the rest;
-- fields the dead letter sets itself are dropped), then error (`reason`),
-- failed_at and priority. Bumps `counter`; with `cap` > 0 trims DEAD to
-- `cap` entries, counting what it drops. Returns how many it dropped.
local function write_dead_letter(fields, from, reason, failed_at, priority, cap, counter)
  local known = {[RAW_FIELD] = true}
  for _, f in ipairs(ENVELOPE_FIELDS) do known[f] = true end
  local added = {[ERROR_FIELD] = true, [FAILED_AT_FIELD] = true, [PRIORITY_FIELD] = true}
  local out, extra, omitted = {}, 0, 0
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
  redis.call('XADD', DEAD, '*', unpack(out))
  redis.call('HINCRBY', STATS, counter, 1)
  local dropped = 0
  if cap > 0 then
    dropped = redis.call('XTRIM', DEAD, 'MAXLEN', cap)
    if dropped > 0 then redis.call('HINCRBY', STATS, COUNTER_DEAD_DROPPED, dropped) end
  end
  return dropped
end
