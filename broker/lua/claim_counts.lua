-- claim_counts.lua: how many new entries to claim from each priority stream.
-- (shared/group_state.lua is prepended.)
-- KEYS[1..4] the critical, high, normal and low streams of one queue
-- ARGV[1] group   ARGV[2] N (the consumer's free slots)
-- Returns {c1, c2, c3, c4}: take c1 from critical, then c2 from high, ...;
-- sum <= N, strict priority (a lower stream gets a count only when the higher
-- ones have fewer than N waiting). The caller then reads with plain
-- XREADGROUP COUNT ci, so the entries do not pass through Lua.
-- Waiting = the group's lag (XINFO GROUPS), not XLEN - pending: a stream may
-- still hold finished entries that the bulk trim has not reached (see
-- shared/remove_done.lua). A stream whose group is missing (its key was
-- deleted) gets the group again, from the start.
local group = ARGV[1]
local want = tonumber(ARGV[2])
local counts = {0, 0, 0, 0}
for i = 1, #KEYS do
  if want <= 0 then break end
  local len = redis.call('XLEN', KEYS[i])
  if len > 0 then
    local st = group_state(KEYS[i], group)
    local take
    if st then
      take = waiting(KEYS[i], st, want)
    else
      redis.call('XGROUP', 'CREATE', KEYS[i], group, '0', 'MKSTREAM')
      take = math.min(want, len)
    end
    counts[i] = take
    want = want - take
  end
end
return counts
