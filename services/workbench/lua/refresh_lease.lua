-- KEYS: lease; ARGV: token, ttl ms. Extend the lease while it is still this run's.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
