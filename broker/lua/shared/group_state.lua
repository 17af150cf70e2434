-- shared/group_state.lua: the consumer group's state on a stream.

-- The state of `group` on `stream` from XINFO GROUPS, or nil when the
-- stream or the group does not exist: {pending, last (last-delivered-id),
-- lag, lag_field}. lag (entries not yet delivered) is nil when Redis cannot
-- tell: before Redis 7.0 (then lag_field is false too: the reply has no
-- such field), or on 7.0+ after an XDEL at the group's read position.
-- Any other error (an ACL without XINFO GROUPS, a key of another type) is
-- raised, not taken for a missing group.
local function group_state(stream, group)
  if redis.call('EXISTS', stream) == 0 then return nil end
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local s = {}
    for i = 1, #g, 2 do s[g[i]] = g[i + 1] end
    if s.name == group then
      local lag = s.lag
      local lag_field = lag ~= nil
      if type(lag) ~= 'number' then lag = nil end
      return {pending = tonumber(s.pending) or 0, last = s['last-delivered-id'],
        lag = lag, lag_field = lag_field}
    end
  end
  return nil
end
