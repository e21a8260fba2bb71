-- The table rows of several entries in one call.
-- KEYS: entry keys; returns summary, state, operator of each (one call, not N commands)
local out = {}
for i = 1, #KEYS do
  local row = redis.call('HMGET', KEYS[i], 'summary', 'state', 'operator')
  out[#out + 1] = row[1]
  out[#out + 1] = row[2]
  out[#out + 1] = row[3]
end
return out
