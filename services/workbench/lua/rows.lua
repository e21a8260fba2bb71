-- The table rows of several entries in one call.
-- KEYS: entry keys; returns summary, state, operator, cause, cause_src, fgroup of each
-- (one call, not N commands)
local out = {}
for i = 1, #KEYS do
  local row = redis.call('HMGET', KEYS[i], 'summary', 'state', 'operator', 'cause', 'cause_src',
    'fgroup')
  for j = 1, 6 do out[#out + 1] = row[j] end
end
return out
