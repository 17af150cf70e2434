-- record_timing.lua: a worker's completed jobs of the last second or so,
-- added to the current minute's counts and histograms (shared/timing.lua).
-- KEYS: the four streams ... timing (shared/queue.lua)
-- ARGV[1] group (unused)   ARGV[2] completed   ARGV[3] sum of their wait
-- times (ms)   ARGV[4] sum of their run times (ms)   ARGV[5..] (bucket
-- field, count) pairs: 'w<k>' wait, 'r<k>' run, k = floor(4 log2(ms + 1))
-- Returns 1.
local now = server_now_ms()
timing_add(now, ARGV, 2)
return 1
