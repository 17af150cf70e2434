-- shared/events.lua (needs settings.lua): the queue's lifecycle events,
-- only while its `events` setting (the stream's length cap) is on.
--
-- An event is an entry of EVENTS: `event` (enqueued, started, progress,
-- retrying, succeeded, dead, cancelled, recovered), `id` (the job), and
-- the fields the event adds (attempt, worker, error, progress). The
-- stream is capped (XADD MAXLEN ~ cap): readers that fall behind miss the
-- oldest.

-- The events cap: 0 when events are off (one HGET per script call).
local function events_cap()
  return tonumber(redis.call('HGET', SETTINGS, 'events')) or 0
end

-- Adds one event per job of `ids`, with the flat field list `extra`
-- (may be empty), when `cap` > 0.
local function emit(cap, event, ids, extra)
  if cap <= 0 then return end
  for _, id in ipairs(ids) do
    redis.call('XADD', EVENTS, 'MAXLEN', '~', cap, '*', 'event', event, 'id', id, unpack(extra))
  end
end
