-- KEYS: lease; ARGV: token. Delete the lease while it is still this run's.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
