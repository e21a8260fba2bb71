-- Take back intents that WAIT did not confirm (nothing of them was published): drop each
-- entry's sending field while the entry is still claimed by that action.
-- KEYS: entry keys...; ARGV: JSON [action id, ...]
local ids = cjson.decode(ARGV[1])
local dropped = 0
for i = 1, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'state', 'action_id')
  if cur[1] == 'claimed' and cur[2] == ids[i] then
    dropped = dropped + redis.call('HDEL', KEYS[i], 'sending')
  end
end
return dropped
