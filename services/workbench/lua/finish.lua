-- claimed -> a final state (complete) or parked (release), by the holding action only.
-- After now.lua.
-- KEYS: entry, inflight, changes
-- ARGV: id, action_id, new state, op, detail, last_error, maxlen, then optionally more
-- field/value pairs written with the transition (finish_many.lua's outcome fields)
-- The reply: ok, state, operator, action, action_id, then what finish_many.lua reads of the
-- entry as it was (its intent, out_aid, pid) and, when this call changed it, true. An
-- empty maxlen leaves the window's bookkeeping to the caller: no change event and no SREM
-- from inflight (it writes one event per kind of change and one SREM for its window).
-- Safe to run twice (a run repeats it when the reply was lost in a failover): a second
-- run finds the entry in the new state with this action id - the "repeated call" - and
-- answers 1 without a second change event; a release finds it parked the same way.
local cur = redis.call('HMGET', KEYS[1], 'state', 'operator', 'action', 'action_id', 'version',
  'sending', 'out_aid', 'pid')
if not cur[1] then return {0, false, false, false, false} end
local function reply(ok, state, changed)
  return {ok, state, cur[2], cur[3], cur[4], cur[6], cur[7], cur[8], changed}
end
if cur[4] ~= ARGV[2] then return reply(0, cur[1], false) end
if cur[1] == ARGV[3] then return reply(1, cur[1], false) end  -- repeated call
if cur[1] ~= 'claimed' then return reply(0, cur[1], false) end
local fields = {KEYS[1], 'state', ARGV[3], 'detail', ARGV[5], 'last_error', ARGV[6],
  'updated_at', now, 'version', (tonumber(cur[5]) or 0) + 1}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', unpack(fields))
if ARGV[7] ~= '' then
  redis.call('SREM', KEYS[2], ARGV[1])
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*',
    'id', ARGV[1], 'state', ARGV[3], 'op', ARGV[4], 'ts', now, 'operator', cur[2] or '')
end
return reply(1, ARGV[3], true)
