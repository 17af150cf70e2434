-- record_timing.lua: a worker's completed jobs of the last second or so,
-- added to the current minute's counts and histograms (shared/timing.lua).
-- KEYS: the four streams ... timing (shared/queue.lua)
-- ARGV[1] group (unused)   ARGV[2..] ('<priority>:<metric>', count) pairs:
-- metric n completed, ws / rs sum of their wait / run times (ms), w<k> /
-- r<k> how many waited / ran a time in bucket k = floor(4 log2(ms + 1)).
-- Each is added for the priority and for the queue.
-- Returns 1.
local now = server_now_ms()
timing_add(now, ARGV, 2)
return 1
