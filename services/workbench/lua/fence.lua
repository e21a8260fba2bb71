-- KEYS: lease; ARGV: fence value, ttl ms. A live lease wins; otherwise the run is fenced.
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 5) == 'live:' then return {0, v} end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
return {1, v or ''}
