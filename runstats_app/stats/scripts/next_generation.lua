-- The generation of a new lease: after the stored result's, even if the counter was lost.
-- KEYS[1]: the result's hash {g, e}; KEYS[2]: the generation counter.
-- ARGV: the counter's lifetime in ms. A failover may lose the counter's latest increments
-- (replication is asynchronous) while keeping a result: restarting from the stored
-- generation keeps every new lease's generation above the result it may replace.
local next = redis.call('INCR', KEYS[2])
local stored = tonumber(redis.call('HGET', KEYS[1], 'g'))
if stored and stored >= next then
  next = stored + 1
  redis.call('SET', KEYS[2], next)
end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return next
