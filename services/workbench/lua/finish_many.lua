-- Finish a window of entries and drop their intents. After now.lua and finish.lua as the
-- local function `finish`.
-- KEYS: inflight, changes, outcomes pending (hash), outcomes due (zset), entry keys...
-- ARGV: maxlen, JSON [[id, action id, new state, op, detail, error, job, sent at ms,
-- outcome deadline ms], ...], the DLQ's key base (its job counters: base:jobc:<job>)
-- A completed requeue or retry starts the entry's outcome (pending, see outcomes.model); a
-- completed cancel's outcome is the cancellation. Started once per action id.
local items = cjson.decode(ARGV[2])
local out = {}
for i = 1, #KEYS - 4 do
  local key = KEYS[4 + i]
  local a = items[i]
  out[i] = finish({key, KEYS[1], KEYS[2]}, {a[1], a[2], a[3], a[4], a[5], a[6], ARGV[1]})
  -- the intent is settled: drop it, if it is still this action's
  local v = redis.call('HGET', key, 'sending')
  local prefix = a[2] .. '|'
  if v and string.sub(v, 1, #prefix) == prefix then redis.call('HDEL', key, 'sending') end
  if out[i][1] == 1 and a[4] == 'complete' and redis.call('HGET', key, 'out_aid') ~= a[2] then
    local job = a[7] or ''
    local outcome = 'pending'
    if a[3] == 'cancelled' then outcome = 'cancelled' end
    redis.call('HSET', key, 'outcome', outcome, 'out_aid', a[2], 'out_since', a[8],
      'job', job, 'out_detail', '', 'out_link', '')
    if outcome == 'pending' then
      redis.call('HDEL', key, 'out_at')
      local pid = redis.call('HGET', key, 'pid')
      if pid then
        local ids = redis.call('HGET', KEYS[3], pid)
        redis.call('HSET', KEYS[3], pid, ids and (ids .. ' ' .. a[1]) or a[1])
      end
      redis.call('ZADD', KEYS[4], a[9], a[1])
    else
      redis.call('HSET', key, 'out_at', now)
    end
    if job ~= '' then redis.call('HINCRBY', ARGV[3] .. ':jobc:' .. job, outcome, 1) end
  end
end
return out
