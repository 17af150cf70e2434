-- progress.lua: a running job's progress.
-- KEYS: the four streams ... progress (shared/queue.lua)
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] priority index (1-4)
-- ARGV[4] entry id   ARGV[5] job id   ARGV[6] the progress's fields, JSON
-- members without braces ('"percent":42,"info":{...}')
-- Stores '{"at":<server ms>,<fields>}' in PROGRESS under the job id, only
-- while the entry is still this consumer's (a late report of a job that
-- ended, or that another worker took, writes nothing).
-- Returns 1 if stored, 0 if not.
local now = server_now_ms()
local stream = stream_at(ARGV[3])
if not pending_for(stream, GROUP, ARGV[2], ARGV[4]) then return 0 end
local progress = '{"at":' .. now .. '}'
if ARGV[6] ~= '' then progress = '{"at":' .. now .. ',' .. ARGV[6] .. '}' end
redis.call('HSET', PROGRESS, ARGV[5], progress)
emit(events_cap(), 'progress', {ARGV[5]}, {'progress', progress})
return 1
