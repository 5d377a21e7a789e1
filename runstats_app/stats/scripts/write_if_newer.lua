-- Store a result unless a newer computation already stored one.
-- KEYS[1]: the result's hash {g = generation, e = envelope}.
-- ARGV: generation, envelope, lifetime in milliseconds. Returns 1 if written.
local stored = tonumber(redis.call('HGET', KEYS[1], 'g'))
if stored and stored > tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'g', ARGV[1], 'e', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
