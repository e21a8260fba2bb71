-- Finish a window of entries and drop their intents. After now.lua and finish.lua as the
-- local function `finish`.
-- KEYS: inflight, changes, entry keys...
-- ARGV: maxlen, JSON [[id, action id, new state, op, detail, error], ...]
local items = cjson.decode(ARGV[2])
local out = {}
for i = 1, #KEYS - 2 do
  local key = KEYS[2 + i]
  local a = items[i]
  out[i] = finish({key, KEYS[1], KEYS[2]}, {a[1], a[2], a[3], a[4], a[5], a[6], ARGV[1]})
  -- the intent is settled: drop it, if it is still this action's
  local v = redis.call('HGET', key, 'sending')
  local prefix = a[2] .. '|'
  if v and string.sub(v, 1, #prefix) == prefix then redis.call('HDEL', key, 'sending') end
end
return out
