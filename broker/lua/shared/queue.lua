-- shared/queue.lua: prepended to every script (see scripts.rs). The layout
-- every script shares, and the names the Rust side uses too (unit tests in
-- broker/src/scripts.rs check them against the Rust constants). Constants
-- are plain locals, not tables: this runs on every call, and a table costs
-- Redis CPU each time.

-- KEYS, the same positions in every script: the four priority streams,
-- highest first, then the counters hash, the delayed set and the
-- dead-letter stream of one queue (all under one hash tag: one cluster
-- slot). A script is given the keys up to the last one it uses (see
-- scripts.rs): fewer keys make the per-job calls cheaper.
local STREAMS = {KEYS[1], KEYS[2], KEYS[3], KEYS[4]}
local STATS, DELAYED, DEAD = KEYS[5], KEYS[6], KEYS[7]
-- Then the queue's settings hash, the index of jobs not found by their id
-- alone, the envelopes of delayed jobs, and the finished jobs' records
-- with their expiry (the job lifecycle; see broker/src/keys/).
local SETTINGS, INDEX, SCHEDULED, RESULTS, RETENTION = KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12]
-- The start of every other key of the queue, '<prefix>:{<queue>}:': a
-- derived key is QUEUE_BASE .. its suffix (broker/src/keys/)
-- (nil in a script given only the four streams.)
local QUEUE_BASE = SETTINGS and string.sub(SETTINGS, 1, #SETTINGS - #'settings')
-- And the cancellations asked for running jobs, the live workers,
-- running jobs' progress, the per-minute timings (stats), the events.
local CANCELS, WORKERS, PROGRESS, TIMING = KEYS[13], KEYS[14], KEYS[15], KEYS[16]
local EVENTS = KEYS[17]
-- A key of the script's own (a batch's marker, a worker's registration)
-- comes after the queue's.
local EXTRA_KEY = KEYS[18]
-- ARGV[1] of every script: the consumer group the workers read through.
local GROUP = ARGV[1]

-- The counters of the stats hash.
local COUNTER_COMPLETED = 'completed'
local COUNTER_RETRIED = 'retried'
local COUNTER_DEAD = 'dead'
local COUNTER_MALFORMED = 'malformed'
local COUNTER_RECOVERED = 'recovered'
local COUNTER_DEAD_DROPPED = 'dead_dropped'
local COUNTER_CANCELLED = 'cancelled'

-- The stream at a priority index (1-4, as passed in ARGV); raises an error
-- for anything else.
local function stream_at(index)
  local s = STREAMS[tonumber(index)]
  if not s then error('ferry: bad priority index ' .. tostring(index)) end
  return s
end
