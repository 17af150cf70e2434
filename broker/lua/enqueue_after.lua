-- enqueue_after.lua: jobs that run after other jobs of their queue
-- succeed (shared/deps.lua): one job after its dependencies, or a flow (a
-- tree of jobs, each after its children), written all or none.
-- KEYS: the four streams ... events (shared/queue.lua)
-- ARGV[1] group   ARGV[2] the flow's root id ('' for no flow: one job
-- after its dependencies)   ARGV[3] n, the number of jobs; then each job's
-- fields (shared/enqueue_jobs.lua). A flow's jobs carry the entry field
-- `flow` (the root's id), and its shape is kept in P:{Q}:flows:<root>
-- (shared/deps.lua). Returns {'ok', w1, ..., wn}, each job's count of
-- dependencies it waits for (0: it entered its stream, or the wait at a
-- concurrency gate; otherwise it is waiting, state `waiting`), or
-- read_jobs's error reply ({'duplicate', id}, {'self', id}, {'unknown',
-- dependency, job}, {'failed', dependency, how, job}, {'full', depth,
-- max}), with nothing written.
local now = server_now_ms()
local root = ARGV[2]
local jobs, err = read_jobs(4, tonumber(ARGV[3]) or 0, now)
if not jobs then return err end
local reply, ids
if root ~= '' then
  reply, ids = write_jobs(jobs, now, {[FLOW_FIELD] = root})
  flow_record(root, jobs)
else
  reply, ids = write_jobs(jobs, now)
end
emit(events_cap(), 'enqueued', ids, {})
return reply
