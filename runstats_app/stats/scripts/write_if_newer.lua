-- Store a result if its writer still holds the key's lease and nothing newer is stored.
-- KEYS[1]: the result's hash {g = generation, e = envelope}; KEYS[2]: the key's lease.
-- ARGV: generation, envelope, lifetime in milliseconds, the writer's lease token.
-- Returns 1 if written. Only the lease's holder writes, so results are written in the
-- order their computations began, even when a failover lost a lease or a generation: an
-- owner whose lease is gone (expired, or lost with the old master) writes nothing.
if redis.call('GET', KEYS[2]) ~= ARGV[4] then
  return 0
end
local stored = tonumber(redis.call('HGET', KEYS[1], 'g'))
if stored and stored > tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'g', ARGV[1], 'e', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
