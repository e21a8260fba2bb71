-- Compare-and-set: the expected state -> claimed, for one action. After now.lua.
-- KEYS: entry, inflight, changes; ARGV: id, expected, action, action_id, operator, maxlen,
-- and optionally the intent (a pending send, see actions.ledger) written with the claim.
-- An empty maxlen leaves the window's bookkeeping to the caller: no change event and no
-- SADD to inflight (it writes one event and one SADD for its window), and a new claim's
-- reply has a 6th element, true.
-- Safe to run twice (a run repeats it when the reply was lost in a failover; it may have
-- run on the old master, reached the new one or not): a second run finds the entry
-- already claimed with this action id and answers as the first did, writing nothing but
-- its intent again, byte for byte (so that a WAIT after the repeated call also covers the
-- first call's writes).
local cur = redis.call('HMGET', KEYS[1], 'state', 'operator', 'action', 'action_id', 'version')
if not cur[1] then return {0, false, false, false, false} end
if cur[1] == 'claimed' and cur[4] == ARGV[4] then  -- already ours: a repeated call
  if ARGV[7] and ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'sending', ARGV[7]) end
  return {1, 'claimed', cur[2], cur[3], cur[4]}
end
if cur[1] ~= ARGV[2] then return {0, cur[1], cur[2], cur[3], cur[4]} end
local version = (tonumber(cur[5]) or 0) + 1
if ARGV[7] and ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], 'state', 'claimed', 'action', ARGV[3], 'action_id', ARGV[4],
    'operator', ARGV[5], 'detail', '', 'updated_at', now, 'version', version,
    'sending', ARGV[7])
else
  redis.call('HSET', KEYS[1], 'state', 'claimed', 'action', ARGV[3], 'action_id', ARGV[4],
    'operator', ARGV[5], 'detail', '', 'updated_at', now, 'version', version)
end
if ARGV[6] == '' then return {1, 'claimed', ARGV[5], ARGV[3], ARGV[4], true} end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*',
  'id', ARGV[1], 'state', 'claimed', 'op', 'claim', 'ts', now, 'operator', ARGV[5])
return {1, 'claimed', ARGV[5], ARGV[3], ARGV[4]}
