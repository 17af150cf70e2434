-- shared/ownership.lua: whether a consumer still owns a pending entry:
-- recovery may have handed it to another consumer (this one stopped
-- renewing its lease), and then only the new owner may finish it.

-- The entry's XPENDING row {id, consumer, idle, deliveries} when `id` is
-- pending for `consumer` in `stream`, or nil.
local function pending_for(stream, group, consumer, id)
  return redis.call('XPENDING', stream, group, id, id, 1, consumer)[1]
end

-- The set of entry ids (keys of a table) between `lo` and `hi` pending for
-- `consumer`, found with one XPENDING over the consumer's own entries in
-- [lo, hi], not one call per id. (The caller computes the range: comparing
-- ids here would cost Redis about 1 µs per id.)
local function owned_set(stream, group, consumer, lo, hi)
  local mine = {}
  for _, e in ipairs(redis.call('XPENDING', stream, group, lo, hi, 1000000, consumer)) do
    mine[e[1]] = true
  end
  return mine
end

-- As owned_set, as the list of the ids list[from], list[from + 1], ... owned.
local function owned_among(stream, group, consumer, lo, hi, list, from)
  local mine = owned_set(stream, group, consumer, lo, hi)
  local owned = {}
  for i = from, #list do
    if mine[list[i]] then owned[#owned + 1] = list[i] end
  end
  return owned
end
