-- The envelope of a result and the milliseconds it has left, read atomically.
-- KEYS[1]: the result's hash. Returns {envelope or false, PTTL}.
return {redis.call('HGET', KEYS[1], 'e'), redis.call('PTTL', KEYS[1])}
