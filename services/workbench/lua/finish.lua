-- claimed -> a final state (complete) or parked (release), by the holding action only.
-- After now.lua.
-- KEYS: entry, inflight, changes
-- ARGV: id, action_id, new state, op, detail, last_error, maxlen
-- Safe to run twice (a run repeats it when the reply was lost in a failover): a second
-- run finds the entry in the new state with this action id - the "repeated call" - and
-- answers 1 without a second change event; a release finds it parked the same way.
local cur = redis.call('HMGET', KEYS[1], 'state', 'operator', 'action', 'action_id', 'version')
if not cur[1] then return {0, false, false, false, false} end
if cur[4] ~= ARGV[2] then return {0, cur[1], cur[2], cur[3], cur[4]} end
if cur[1] == ARGV[3] then return {1, cur[1], cur[2], cur[3], cur[4]} end  -- repeated call
if cur[1] ~= 'claimed' then return {0, cur[1], cur[2], cur[3], cur[4]} end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'detail', ARGV[5], 'last_error', ARGV[6],
  'updated_at', now, 'version', (tonumber(cur[5]) or 0) + 1)
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*',
  'id', ARGV[1], 'state', ARGV[3], 'op', ARGV[4], 'ts', now, 'operator', cur[2] or '')
return {1, ARGV[3], cur[2], cur[3], cur[4]}
