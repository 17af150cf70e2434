-- shared/waiting.lua (needs group_state.lua): how many entries of a stream
-- wait for the group, whatever finished entries the stream still holds.

-- Entries of `stream` not yet delivered to the group, counted exactly up to
-- `limit`, whatever finished entries the stream still holds (claims use
-- this): Redis's lag when it has one; before 7.0, XLEN - pending (exact
-- there, since remove_done deletes every finished entry it cannot trim at
-- once); on 7.0+ without a lag, a bounded XRANGE after the last-delivered id.
local function waiting(stream, st, limit)
  if st.lag then return math.min(st.lag, limit) end
  if not st.lag_field then
    return math.min(limit, math.max(0, redis.call('XLEN', stream) - st.pending))
  end
  return #redis.call('XRANGE', stream, '(' .. st.last, '+', 'COUNT', limit)
end

-- Entries of `stream` not yet delivered, for stats: the lag when Redis has
-- one, otherwise XLEN - pending in O(1), which on 7.0+ may also count
-- finished entries the bulk trim has not reached yet (at most 10,000).
local function waiting_estimate(stream, st)
  if st.lag then return st.lag end
  return math.max(0, redis.call('XLEN', stream) - st.pending)
end
