-- KEYS: lease; ARGV: the live value seen, fence value, ttl ms: fence a run whose
-- process is known to be dead, only if its lease is still the one that was seen
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
