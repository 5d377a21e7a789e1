-- Take one of the scan slots shared by every host, or say why not.
-- KEYS[1]: the slots, a sorted set: member "<client>|<token>", score: start in ms (Redis time).
-- ARGV: member, lease ms, slots in all, slots one client may hold, the client's "<client>|".
-- A slot older than the lease is a dead holder's: it is dropped, so a killed worker frees
-- its slot by expiry. Returns {1, now} when taken, {0, now, oldest start of the full scope,
-- scope} otherwise (scope 1: every slot is held, 2: the client holds its share).
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - lease)
local held = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local prefix = ARGV[5]
local mine, mine_oldest = 0, nil
for i = 1, #held, 2 do
  if string.sub(held[i], 1, #prefix) == prefix then
    mine = mine + 1
    mine_oldest = mine_oldest or held[i + 1]
  end
end
if #held / 2 >= tonumber(ARGV[3]) then
  return {0, now, held[2], 1}
end
if mine >= tonumber(ARGV[4]) then
  return {0, now, mine_oldest, 2}
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
return {1, now}
