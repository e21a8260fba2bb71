-- Claim a window of entries (with their intents, when given) and read the winners'
-- messages. After now.lua. claim.lua's compare-and-set, inline: one HMGET per entry reads
-- the state and the message (the holder's operator and action only for a claim lost), one
-- HSET writes the claim and its intent.
-- KEYS: inflight, changes, the run's lease, entry keys...
-- ARGV: expected state, action, operator, maxlen, "1" to read a requeue's stored encoded
-- properties (rq, see republish.py), the run's lease token, then three per entry: entry
-- id, action id, intent ("": none; the intent is written later, by mark_sending.lua).
-- Only while the lease holds the token (as mark_sending.lua): else nothing is claimed and
-- the reply is false. The window's bookkeeping is one SADD to inflight and one change
-- event: the ids it claimed, space-separated (field `ids`).
-- Each reply: claimed (now, or already by this action id: see below) {1, body, rq} when rq
-- is asked for and stored, else {1, body, props, headers, exchange, rkey}; not claimed:
-- {0, state, operator, action, action_id} (state false: no such entry).
-- Safe to run twice (as claim.lua; a run repeats it when the reply was lost in a
-- failover): an entry already claimed with this action id answers as the first call did,
-- its intent written again, byte for byte, and no second change event.
if redis.call('GET', KEYS[3]) ~= ARGV[6] then return false end
local expected, action, operator = ARGV[1], ARGV[2], ARGV[3]
local want_rq = ARGV[5] == '1'
local out = {}
local claimed = {}
for i = 1, #KEYS - 3 do
  local key = KEYS[3 + i]
  local at = 4 + 3 * i
  local aid, intent = ARGV[at + 1], ARGV[at + 2]
  local cur  -- who holds it (operator, action) is read for a claim lost only
  if want_rq then
    cur = redis.call('HMGET', key, 'state', 'action_id', 'version', 'body', 'rq')
  else
    cur = redis.call('HMGET', key, 'state', 'action_id', 'version')
  end
  local state = cur[1]
  local won = false
  if not state then
    out[i] = {0, false, false, false, false}
  elseif state == 'claimed' and cur[2] == aid then  -- already ours: a repeated call
    if intent ~= '' then redis.call('HSET', key, 'sending', intent) end
    won = true
  elseif state ~= expected then
    local holder = redis.call('HMGET', key, 'operator', 'action')
    out[i] = {0, state, holder[1], holder[2], cur[2]}
  else
    local version = (tonumber(cur[3]) or 0) + 1
    if intent ~= '' then
      redis.call('HSET', key, 'state', 'claimed', 'action', action, 'action_id', aid,
        'operator', operator, 'detail', '', 'updated_at', now, 'version', version,
        'sending', intent)
    else
      redis.call('HSET', key, 'state', 'claimed', 'action', action, 'action_id', aid,
        'operator', operator, 'detail', '', 'updated_at', now, 'version', version)
    end
    claimed[#claimed + 1] = ARGV[at]
    won = true
  end
  if won then
    local rq = cur[5]
    if rq and rq ~= '' then
      out[i] = {1, cur[4], rq}
    else
      local m = redis.call('HMGET', key, 'body', 'props', 'headers', 'exchange', 'rkey')
      out[i] = {1, m[1], m[2], m[3], m[4], m[5]}
    end
  end
end
for j = 1, #claimed, 1000 do
  redis.call('SADD', KEYS[1], unpack(claimed, j, math.min(j + 999, #claimed)))
end
if #claimed > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'ids', table.concat(claimed, ' '),
    'state', 'claimed', 'op', 'claim', 'ts', now, 'operator', operator)
end
return out
