-- shared/ownership.lua: prepended to every script. Whether a consumer still
-- owns a pending entry: recovery may have handed it to another consumer
-- (this one stopped renewing its lease), and then only the new owner may
-- finish it.

-- The entry's XPENDING row {id, consumer, idle, deliveries} when `id` is
-- pending for `consumer` in `stream`, or nil.
local function pending_for(stream, group, consumer, id)
  return redis.call('XPENDING', stream, group, id, id, 1, consumer)[1]
end

-- The ids of `ids` (a Lua list of entry ids) pending for `consumer`, found
-- with one XPENDING over the consumer's own entries between the lowest and
-- highest id, not one call per id.
local function owned_among(stream, group, consumer, ids)
  local lo, hi = ids[1], ids[1]
  for i = 2, #ids do
    if id_less(ids[i], lo) then lo = ids[i] end
    if id_less(hi, ids[i]) then hi = ids[i] end
  end
  if not (id_parts(lo) and id_parts(hi)) then lo, hi = '-', '+' end
  local mine = {}
  for _, e in ipairs(redis.call('XPENDING', stream, group, lo, hi, 1000000, consumer)) do
    mine[e[1]] = true
  end
  local owned = {}
  for _, id in ipairs(ids) do
    if mine[id] then owned[#owned + 1] = id end
  end
  return owned
end
