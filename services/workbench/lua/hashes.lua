-- The whole stored hashes of several entries in one call (one reply, not N).
-- KEYS: entry keys; returns each key's HGETALL as a flat field, value list (empty: no entry)
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('HGETALL', KEYS[i])
end
return out
