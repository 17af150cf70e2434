-- purge_dead.lua: delete the oldest dead letters, and their jobs' INDEX fields.
-- KEYS: the four streams ... index (shared/queue.lua)
-- ARGV[1] group (unused)   ARGV[2] most entries to delete in this call
-- Returns how many entries it deleted (0 when DEAD is empty).
return remove_oldest_dead_letters(math.max(1, tonumber(ARGV[2])))
