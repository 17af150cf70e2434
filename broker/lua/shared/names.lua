-- shared/names.lua: prepended to the scripts that read or write a job's
-- fields by name (unit tests in broker/src/scripts.rs check these against
-- the Rust constants).

-- Priority names in stream order, and a name's position in STREAMS.
local PRIORITIES = {'critical', 'high', 'normal', 'low'}
local PRIORITY_INDEX = {critical = 1, high = 2, normal = 3, low = 4}
-- Where an entry whose priority is unknown goes.
local DEFAULT_PRIORITY = 3

-- The fields of a job's stream entry, in documented order: every move of a
-- job carries them (the trace context, the last two, is carried as it is).
local ENVELOPE_FIELDS = {'id', 'type', 'payload', 'attempt', 'max_retries', 'enqueued_at', 'last_error',
  'retention_ms', 'concurrency_key', 'batch', 'flow',
  'traceparent', 'tracestate'}
-- The job's concurrency key (shared/gates.lua), when its producer gave one.
local CONCURRENCY_KEY_FIELD = 'concurrency_key'
-- Fields a dead letter adds to the job's own; the priority field is also
-- in a delayed-set member.
local ERROR_FIELD = 'error'
local FAILED_AT_FIELD = 'failed_at'
local PRIORITY_FIELD = 'priority'
-- The one field of a promoted delayed-set member that was not an envelope.
local RAW_FIELD = 'raw'
-- A dead letter's count of the entry's fields it left out.
local OMITTED_FIELD = 'omitted_fields'

-- The stream of a priority name (the normal stream for an unknown name).
local function stream_of(priority)
  return STREAMS[PRIORITY_INDEX[priority] or DEFAULT_PRIORITY]
end

-- A job's id when its entry has no `id` field (a fresh job): the priority
-- and entry id it was first queued as, '<priority>-<ms>-<seq>'.
local function derived_id(priority, entry_id)
  return priority .. '-' .. entry_id
end

-- The value of field `name` in a flat field/value list read from `from`, or nil.
local function field_in(fields, from, name)
  for i = from, #fields - 1, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end

-- The ms part of a stream entry id, as a number.
local function entry_ms(entry_id)
  return tonumber(string.match(entry_id, '^(%d+)%-')) or 0
end
