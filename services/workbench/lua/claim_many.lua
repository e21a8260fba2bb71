-- Claim a window of entries and read the winners' messages. After now.lua and claim.lua
-- as the local function `claim`.
-- KEYS: inflight, changes, entry keys...
-- ARGV: expected state, action, operator, maxlen, JSON [[entry id, action id], ...],
-- "1" to read a requeue's stored encoded properties (rq, see republish.py)
-- Each reply: the claim's, then the message: {body, rq} when rq is asked for and stored,
-- else {body, props, headers, exchange, rkey}.
local pairs_ = cjson.decode(ARGV[5])
local want_rq = ARGV[6] == '1'
local out = {}
for i = 1, #KEYS - 2 do
  local key = KEYS[2 + i]
  local r = claim({key, KEYS[1], KEYS[2]},
    {pairs_[i][1], ARGV[1], ARGV[2], pairs_[i][2], ARGV[3], ARGV[4]})
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
return out
