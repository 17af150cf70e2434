-- shared/queue.lua: prepended to every script (see scripts.rs). The layout
-- every script shares, and the names the Rust side uses too (a unit test in
-- broker/src/scripts.rs checks them against the Rust constants).

-- KEYS, the same positions in every script: the four priority streams,
-- highest first, then the delayed set, the dead-letter stream and the
-- counters hash of one queue (all under one hash tag: one cluster slot).
local STREAMS = {KEYS[1], KEYS[2], KEYS[3], KEYS[4]}
local DELAYED, DEAD, STATS = KEYS[5], KEYS[6], KEYS[7]
-- ARGV[1] of every script: the consumer group the workers read through.
local GROUP = ARGV[1]

-- Priority names in stream order, and a name's position in STREAMS.
local PRIORITIES = {'critical', 'high', 'normal', 'low'}
local PRIORITY_INDEX = {critical = 1, high = 2, normal = 3, low = 4}
-- Where an entry whose priority is unknown goes.
local DEFAULT_PRIORITY = 3

-- The fields of a job's stream entry, in documented order.
local ENVELOPE_FIELDS = {'id', 'type', 'payload', 'attempt', 'max_retries', 'enqueued_at', 'last_error'}
-- Fields a dead letter adds to the job's own.
local DEAD_LETTER_FIELDS = {error = 'error', failed_at = 'failed_at', priority = 'priority'}
-- The priority's field in a dead letter and in a delayed-set member.
local PRIORITY_FIELD = DEAD_LETTER_FIELDS.priority
-- The one field of a promoted delayed-set member that was not an envelope.
local RAW_FIELD = 'raw'
-- A dead letter's count of the entry's fields it left out.
local OMITTED_FIELD = 'omitted_fields'

-- The counters of the stats hash (a misspelt name is nil, which Redis
-- refuses as an argument, so a typo fails loudly).
local COUNTERS = {completed = 'completed', retried = 'retried', dead = 'dead',
  malformed = 'malformed', recovered = 'recovered', dead_dropped = 'dead_dropped'}

-- The stream of a priority name (the normal stream for an unknown name).
local function stream_of(priority)
  return STREAMS[PRIORITY_INDEX[priority] or DEFAULT_PRIORITY]
end

-- The stream and priority name at a priority index (1-4, as passed in
-- ARGV); raises an error for anything else.
local function stream_at(index)
  local i = tonumber(index)
  if not STREAMS[i] then error('ferry: bad priority index ' .. tostring(index)) end
  return STREAMS[i], PRIORITIES[i]
end
