-- add_to_batch.lua: jobs added to an open batch (shared/batches.lua),
-- from one of its handlers, say; written all or none.
-- KEYS: the four streams ... events (shared/queue.lua)
-- ARGV[1] group   ARGV[2] the batch's id   ARGV[3] n, the number of jobs;
-- then each job's fields (shared/enqueue_jobs.lua).
-- A batch is open until its last member finishes (its callbacks are due
-- then); a member adding jobs while it runs therefore always finds it
-- open. Returns {'ok', w1, ..., wn} (as enqueue_after.lua), {'no_batch',
-- id}, {'batch_closed', id}, or read_jobs's error reply; nothing is
-- written unless 'ok'.
local now = server_now_ms()
local b = ARGV[2]
local key = batch_key(b)
local h = redis.call('HMGET', key, 'total', 'completed_at')
if not h[1] then return {'no_batch', b} end
if h[2] then return {'batch_closed', b} end
local jobs, err = read_jobs(4, tonumber(ARGV[3]) or 0, now)
if not jobs then return err end
local reply, ids = write_jobs(jobs, now, {[BATCH_FIELD] = b})
redis.call('HINCRBY', key, 'total', #jobs)
batch_join(b, ids)
emit(events_cap(), 'enqueued', ids, {})
return reply
