-- register_worker.lua: register (or renew, or remove) a live worker.
-- KEYS: the four streams ... events (shared/queue.lua), then KEYS[18] the
-- worker's registration P:{Q}:worker:<consumer>
-- ARGV[1] group (unused)   ARGV[2] consumer   ARGV[3] TTL (ms; 0 removes
-- the registration)   ARGV[4] the registration's fields, JSON members
-- without braces
-- The registration is '{"heartbeat_at":<server ms>,<fields>}' with the
-- TTL; WORKERS scores the consumer by when it expires. Expired members are
-- dropped here (by the server's clock), a few per call.
-- Returns the number of live workers.
local now = server_now_ms()
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', EXTRA_KEY, '{"heartbeat_at":' .. now .. ',' .. ARGV[4] .. '}', 'PX', ttl)
  redis.call('ZADD', WORKERS, now + ttl, ARGV[2])
else
  redis.call('DEL', EXTRA_KEY)
  redis.call('ZREM', WORKERS, ARGV[2])
end
local gone = redis.call('ZRANGEBYSCORE', WORKERS, '-inf', now, 'LIMIT', 0, 100)
if #gone > 0 then redis.call('ZREM', WORKERS, unpack(gone)) end
return redis.call('ZCARD', WORKERS)
