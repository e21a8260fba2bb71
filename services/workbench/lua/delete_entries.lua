-- Remove entries for good, with their index, fingerprint and in-flight records.
-- KEYS: idx, fp, inflight, payments, entry keys...; ARGV: ids...
local removed = 0
for i = 1, #ARGV do
  local key = KEYS[4 + i]
  local fp = redis.call('HGET', key, 'fingerprint')
  if fp and redis.call('HGET', KEYS[2], fp) == ARGV[i] then redis.call('HDEL', KEYS[2], fp) end
  local payment = redis.call('HGET', key, 'pid')
  if payment then
    local kept = {}
    for other in string.gmatch(redis.call('HGET', KEYS[4], payment) or '', '%S+') do
      if other ~= ARGV[i] then kept[#kept + 1] = other end
    end
    if #kept > 0 then
      redis.call('HSET', KEYS[4], payment, table.concat(kept, ' '))
    else
      redis.call('HDEL', KEYS[4], payment)
    end
  end
  removed = removed + redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('SREM', KEYS[3], ARGV[i])
end
return removed
