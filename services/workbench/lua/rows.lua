-- The table rows of several entries in one call.
-- KEYS: entry keys; returns summary, state, operator, cause, cause_src, fgroup, outcome of each
-- (one call, not N commands)
local out = {}
for i = 1, #KEYS do
  local row = redis.call('HMGET', KEYS[i], 'summary', 'state', 'operator', 'cause', 'cause_src',
    'fgroup', 'outcome')
  for j = 1, 7 do out[#out + 1] = row[j] end
end
return out
