-- Write a window's intents (pending sends), only while the run's lease holds its token.
-- KEYS: lease, entry keys...; ARGV: token, JSON [[action id, pending send], ...]
-- Safe to run twice (a run repeats it when the reply was lost in a failover): the same
-- pending send is written again, byte for byte, and nothing is published before a call
-- has answered. Where the claim did not survive the failover the entry is not claimed
-- by this action any more and gets 0: it is not sent.
local n = #KEYS - 1
local out = {}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  for i = 1, n do out[i] = 0 end
  return out
end
local items = cjson.decode(ARGV[2])
for i = 1, n do
  local key = KEYS[1 + i]
  local cur = redis.call('HMGET', key, 'state', 'action_id')
  if cur[1] == 'claimed' and cur[2] == items[i][1] then
    redis.call('HSET', key, 'sending', items[i][2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
