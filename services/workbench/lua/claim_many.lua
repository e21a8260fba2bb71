-- Claim a window of entries (with their intents, when given) and read the winners'
-- messages. After now.lua and claim.lua as the local function `claim`.
-- KEYS: inflight, changes, the run's lease, entry keys...
-- ARGV: expected state, action, operator, maxlen, "1" to read a requeue's stored encoded
-- properties (rq, see republish.py), the run's lease token, then three per entry: entry
-- id, action id, intent ("": none; the intent is written later, by mark_sending.lua).
-- Only while the lease holds the token (as mark_sending.lua): else nothing is claimed and
-- the reply is false. The window's bookkeeping is one SADD to inflight and one change
-- event: the ids it claimed, space-separated (field `ids`).
-- Each reply: the claim's, then the message: {body, rq} when rq is asked for and stored,
-- else {body, props, headers, exchange, rkey}.
if redis.call('GET', KEYS[3]) ~= ARGV[6] then return false end
local want_rq = ARGV[5] == '1'
local out = {}
local claimed = {}
for i = 1, #KEYS - 3 do
  local key = KEYS[3 + i]
  local at = 4 + 3 * i
  local r = claim({key, KEYS[1], KEYS[2]},
    {ARGV[at], ARGV[1], ARGV[2], ARGV[at + 1], ARGV[3], '', ARGV[at + 2]})
  if r[6] then claimed[#claimed + 1] = ARGV[at] end
  if r[1] == 1 then
    local stored = want_rq and redis.call('HMGET', key, 'body', 'rq')
    if stored and stored[2] and stored[2] ~= '' then
      r[6] = stored
    else
      r[6] = redis.call('HMGET', key, 'body', 'props', 'headers', 'exchange', 'rkey')
    end
  else
    r[6] = {}
  end
  out[i] = r
end
for j = 1, #claimed, 1000 do
  redis.call('SADD', KEYS[1], unpack(claimed, j, math.min(j + 999, #claimed)))
end
if #claimed > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'ids', table.concat(claimed, ' '),
    'state', 'claimed', 'op', 'claim', 'ts', now, 'operator', ARGV[3])
end
return out
