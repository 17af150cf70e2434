-- drain_gates.lua: let the jobs waiting at concurrency gates go on while
-- the gates have free slots (after a limit was raised or removed).
-- KEYS: the four streams ... scheduled (shared/queue.lua)
-- ARGV[1] group (unused)   ARGV[2] most jobs per gate   ARGV[3..] the gates
-- ('key:<K>', 'type:<T>'; shared/gates.lua)
-- Returns how many jobs left the gates' lists (the caller calls again
-- until none does: no call holds Redis long).
local most = tonumber(ARGV[2]) or 100
local moved = 0
for i = 3, #ARGV do moved = moved + gate_drain(ARGV[i], most) end
return moved
