-- Finish a window of entries and drop their intents. After now.lua and finish.lua as the
-- local function `finish`.
-- KEYS: inflight, changes, outcomes pending (hash), outcomes due (zset), entry keys...
-- ARGV: maxlen, JSON [[id, action id, new state, op, detail, error, job, sent at ms,
-- outcome deadline ms], ...], the DLQ's key base (its job counters: base:jobc:<job>)
-- A completed requeue or retry starts the entry's outcome (pending, see outcomes.model); a
-- completed cancel's outcome is the cancellation. Started once per action id.
-- Safe to run twice (a run repeats it when the reply was lost in a failover): finish is,
-- the outcome and the job's counters move only while out_aid is not yet this action id,
-- and the intent is dropped only while it is still this action's.
local items = cjson.decode(ARGV[2])
local out = {}
local due = {}        -- ZADD arguments of the outcome deadlines, one call for the window
local counted = {}    -- job -> outcome -> count, one HINCRBY each for the window
for i = 1, #KEYS - 4 do
  local key = KEYS[4 + i]
  local a = items[i]
  out[i] = finish({key, KEYS[1], KEYS[2]}, {a[1], a[2], a[3], a[4], a[5], a[6], ARGV[1]})
  -- the intent is settled: drop it, if it is still this action's
  local cur = redis.call('HMGET', key, 'sending', 'out_aid', 'pid')
  local prefix = a[2] .. '|'
  local drop = cur[1] and string.sub(cur[1], 1, #prefix) == prefix
  if out[i][1] == 1 and a[4] == 'complete' and cur[2] ~= a[2] then
    local job = a[7] or ''
    local outcome = 'pending'
    if a[3] == 'cancelled' then outcome = 'cancelled' end
    redis.call('HSET', key, 'outcome', outcome, 'out_aid', a[2], 'out_since', a[8],
      'job', job, 'out_detail', '', 'out_link', '')
    if outcome == 'pending' then
      if drop then redis.call('HDEL', key, 'out_at', 'sending') else redis.call('HDEL', key, 'out_at') end
      drop = false
      local pid = cur[3]
      if pid then
        local ids = redis.call('HGET', KEYS[3], pid)
        redis.call('HSET', KEYS[3], pid, ids and (ids .. ' ' .. a[1]) or a[1])
      end
      due[#due + 1] = a[9]
      due[#due + 1] = a[1]
    else
      redis.call('HSET', key, 'out_at', now)
    end
    if job ~= '' then
      counted[job] = counted[job] or {}
      counted[job][outcome] = (counted[job][outcome] or 0) + 1
    end
  end
  if drop then redis.call('HDEL', key, 'sending') end
end
for j = 1, #due, 1000 do
  redis.call('ZADD', KEYS[4], unpack(due, j, math.min(j + 999, #due)))
end
for job, counts in pairs(counted) do
  for outcome, n in pairs(counts) do
    redis.call('HINCRBY', ARGV[3] .. ':jobc:' .. job, outcome, n)
  end
end
return out
