-- stream_info.lua: each priority stream's consumer-group state (reads only).
-- KEYS: the four streams (shared/queue.lua)
-- ARGV[1] group
-- Returns {now ms (server clock), s1, s2, s3, s4}, highest priority first,
-- each s = {length, group found (0/1), pending, last-delivered id or '',
-- lag or false, entries-read or false, consumers, oldest pending entry id
-- or false, that entry's ms since its last delivery or false, oldest
-- waiting entry id or false}. lag and entries-read are false where Redis
-- cannot tell (before 7.0; after an XDEL at the group's read position).
-- O(1) per stream but for XINFO GROUPS (O(groups)).
local out = {server_now_ms()}
for index = 1, 4 do
  local stream = STREAMS[index]
  local s = {0, 0, 0, '', false, false, 0, false, false, false}
  if redis.call('EXISTS', stream) == 1 then
    s[1] = redis.call('XLEN', stream)
    for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
      local info = {}
      for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
      if info.name == GROUP then
        s[2] = 1
        s[3] = tonumber(info.pending) or 0
        s[4] = info['last-delivered-id'] or ''
        if type(info.lag) == 'number' then s[5] = info.lag end
        if type(info['entries-read']) == 'number' then s[6] = info['entries-read'] end
        s[7] = tonumber(info.consumers) or 0
      end
    end
    if s[2] == 1 and s[3] > 0 then
      local oldest = redis.call('XPENDING', stream, GROUP, '-', '+', 1)[1]
      if oldest then s[8], s[9] = oldest[1], oldest[3] end
    end
    local after = '-'
    if s[4] ~= '' and s[4] ~= '0-0' then after = '(' .. s[4] end
    local waiting = redis.call('XRANGE', stream, after, '+', 'COUNT', 1)[1]
    if waiting then s[10] = waiting[1] end
  end
  out[#out + 1] = s
end
return out
