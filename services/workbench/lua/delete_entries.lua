-- Remove entries for good, with their index, fingerprint and in-flight records.
-- KEYS: idx, fp, inflight, entry keys...; ARGV: ids...
local removed = 0
for i = 1, #ARGV do
  local key = KEYS[3 + i]
  local fp = redis.call('HGET', key, 'fingerprint')
  if fp and redis.call('HGET', KEYS[2], fp) == ARGV[i] then redis.call('HDEL', KEYS[2], fp) end
  removed = removed + redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('SREM', KEYS[3], ARGV[i])
end
return removed
