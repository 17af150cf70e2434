-- shared/settings.lua: the queue's settings hash (SETTINGS), written by
-- operators and the SDK (pause, max depth, retention), read by the scripts
-- that act on them. A missing field is its default.

-- How long, and how many, finished jobs' records are kept by default.
local DEFAULT_RETENTION_MS = 86400000
local DEFAULT_RETENTION_COUNT = 10000

-- {ms, count}: the record retention (0 in either keeps nothing).
local function retention()
  local v = redis.call('HMGET', SETTINGS, 'retention_ms', 'retention_count')
  return tonumber(v[1]) or DEFAULT_RETENTION_MS, tonumber(v[2]) or DEFAULT_RETENTION_COUNT
end

-- True while the queue is paused: no new claims.
local function is_paused()
  return redis.call('HGET', SETTINGS, 'paused') == '1'
end

-- The queue's rate limit (settings `rate_limit` = '<n> <period ms>
-- <burst>'; absent: none), by GCRA on the server's clock, with its state
-- (the theoretical arrival time, ms) in the settings field `rate_tat`, and
-- a hold until `held_until` (ms).
-- Returns how many of `want` may start now (want when there is no limit)
-- and, when none may, the ms until one may. Call `rate_take` with how many
-- started. Needs clock.lua.
local function rate_allowance(want, limit, tat, held)
  if not limit and not held then return want, 0, nil end
  local now = server_now_ms()
  -- A hold (a handler's rate_limited, e.g. an upstream's 429): nothing
  -- starts before it ends.
  held = tonumber(held)
  if held and held > now then return 0, math.ceil(held - now), nil end
  if not limit then return want, 0, nil end
  local n, period, burst = string.match(limit, '^(%d+) (%d+) (%d+)$')
  n, period, burst = tonumber(n), tonumber(period), tonumber(burst)
  if not n or n <= 0 or period <= 0 then return want, 0, nil end
  local t = period / n
  local tolerance = (math.max(burst, 1) - 1) * t
  tat = math.max(tonumber(tat) or 0, now)
  local allowed = math.floor((now + tolerance - tat) / t) + 1
  if allowed <= 0 then return 0, math.max(1, math.ceil(tat - tolerance - now)), nil end
  return math.min(want, allowed), 0, {tat = tat, t = t}
end

-- Records that `taken` jobs started under the limit state `st` (from
-- rate_allowance; nil: no limit).
local function rate_take(st, taken)
  if st and taken > 0 then
    redis.call('HSET', SETTINGS, 'rate_tat', string.format('%.3f', st.tat + taken * st.t))
  end
end

-- How many of `want` may start under the queue's concurrency limit
-- (settings `concurrency`, '<n>'; absent: none): n less the jobs running,
-- which are the group's pending entries on the four streams (XPENDING's
-- summary, O(1) per stream besides its list of consumers). A crashed
-- worker's jobs count until recovery hands them on, and a recovered job
-- counts once: the pending list is the truth, no counter can leak.
local function concurrency_allowance(want, limit)
  limit = tonumber(limit)
  if not limit or limit <= 0 then return want end
  local running = 0
  for _, stream in ipairs(STREAMS) do
    local p = redis.pcall('XPENDING', stream, GROUP)
    if type(p) == 'table' and not p.err then running = running + (tonumber(p[1]) or 0) end
  end
  return math.min(want, limit - running)
end

-- The pause, the rate limit, a hold, the concurrency limit and the
-- priority weights, in one read: returns paused (bool), the rate limit,
-- its state, the hold's end (`held_until`, ms), the concurrency limit and
-- the weights.
local function claim_settings()
  local v = redis.call('HMGET', SETTINGS, 'paused', 'rate_limit', 'rate_tat', 'held_until', 'concurrency',
    'weights')
  return v[1] == '1', v[2], v[3], v[4], v[5], v[6]
end

-- The order a claim reads the streams in: strict, critical first ({1, 2,
-- 3, 4}), unless the queue's `weights` setting ('<critical> <high>
-- <normal> <low>', e.g. '8 4 2 1') is set. Then each claim takes a turn
-- (settings `weights_turn`, counted by the claims); of every w1+w2+w3+w4
-- turns, stream i goes first in wi of them, the others after it in strict
-- order, so each priority is served first in proportion to its weight and
-- low never starves.
local function stream_order(weights)
  if not weights then return {1, 2, 3, 4} end
  local w, total = {}, 0
  for n in string.gmatch(weights, '%d+') do
    w[#w + 1] = tonumber(n)
    total = total + tonumber(n)
  end
  if #w ~= 4 or total <= 0 then return {1, 2, 3, 4} end
  local turn = (redis.call('HINCRBY', SETTINGS, 'weights_turn', 1) - 1) % total
  local first = 4
  for i = 1, 4 do
    if turn < w[i] then
      first = i
      break
    end
    turn = turn - w[i]
  end
  local order = {first}
  for i = 1, 4 do
    if i ~= first then order[#order + 1] = i end
  end
  return order
end
