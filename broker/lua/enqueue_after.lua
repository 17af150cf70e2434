-- enqueue_after.lua: jobs that run after other jobs of their queue
-- succeed (shared/deps.lua): one job after its dependencies, or a flow (a
-- tree of jobs, each after its children), written all or none.
-- KEYS: the four streams ... events (shared/queue.lua)
-- ARGV[1] group   ARGV[2] n, the number of jobs; then each job's fields
-- (shared/enqueue_jobs.lua). Returns {'ok', w1, ..., wn}, each job's
-- count of dependencies it waits for (0: it entered its stream, or the
-- wait at a concurrency gate; otherwise it is waiting, state `waiting`),
-- or read_jobs's error reply ({'duplicate', id}, {'self', id},
-- {'unknown', dependency, job}, {'failed', dependency, how, job},
-- {'full', depth, max}), with nothing written.
local now = server_now_ms()
local jobs, err = read_jobs(3, tonumber(ARGV[2]) or 0, now)
if not jobs then return err end
local reply, ids = write_jobs(jobs, now)
emit(events_cap(), 'enqueued', ids, {})
return reply
