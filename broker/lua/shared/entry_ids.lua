-- shared/entry_ids.lua: stream entry ids ('ms-seq') compared exactly,
-- whatever their size.

-- Splits a stream entry id 'ms-seq' into its two decimal parts.
local function id_parts(id)
  return string.match(id, '^(%d+)-(%d+)$')
end

-- a < b for decimal strings without leading zeros (exact at any size).
local function decimal_less(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end

-- a < b for stream entry ids (false when either does not parse).
local function id_less(a, b)
  local am, as = id_parts(a)
  local bm, bs = id_parts(b)
  if not (am and bm) then return false end
  if am ~= bm then return decimal_less(am, bm) end
  return decimal_less(as, bs)
end

-- The smallest id after `id` (`id` itself when its sequence is too large
-- for exact arithmetic here; then one finished entry is kept a while longer).
local function next_id(id)
  local ms, seq = id_parts(id)
  if ms and #seq <= 13 then return ms .. '-' .. (tonumber(seq) + 1) end
  return id
end
