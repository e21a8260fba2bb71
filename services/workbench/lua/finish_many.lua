-- Finish a window of entries and drop their intents. After now.lua and finish.lua as the
-- local function `finish`.
-- KEYS: inflight, changes, outcomes pending (hash), outcomes due (zset), entry keys...
-- ARGV: maxlen, the DLQ's key base (its job counters: base:jobc:<job>), then nine per
-- entry: id, action id, new state, op, detail, error, job, sent at ms, outcome deadline ms
-- A completed requeue or retry starts the entry's outcome (pending, see outcomes.model); a
-- completed cancel's outcome is the cancellation. Started once per action id, written
-- with the transition.
-- The window's bookkeeping: one SREM from inflight, one change event per (state, op,
-- operator) with the ids it changed, space-separated (field `ids`), one read and one
-- write of the payments' pending outcomes, one ZADD of their deadlines.
-- Safe to run twice (a run repeats it when the reply was lost in a failover): finish is,
-- the outcome and the job's counters move only while out_aid is not yet this action id,
-- and the intent is dropped only while it is still this action's.
local out = {}
local due = {}        -- ZADD arguments of the outcome deadlines, one call for the window
local counted = {}    -- job -> outcome -> count, one HINCRBY each for the window
local changed = {}    -- "state op operator" -> ids
local groups = {}     -- {"state op operator", state, op, operator}, in order
local settled = {}    -- ids that left inflight
local waiting = {}    -- payment -> ids now waiting for their outcome, space-separated
local payments = {}   -- those payments, in order
for i = 1, #KEYS - 4 do
  local key = KEYS[4 + i]
  local at = 2 + 9 * (i - 1)
  local id, aid, state, op = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4]
  local job = ARGV[at + 7]
  local outcome = false
  local args = {id, aid, state, op, ARGV[at + 5], ARGV[at + 6], ''}
  if op == 'complete' then
    outcome = 'pending'
    if state == 'cancelled' then outcome = 'cancelled' end
    local fields = {'outcome', outcome, 'out_aid', aid, 'out_since', ARGV[at + 8], 'job', job,
      'out_detail', '', 'out_link', ''}
    if outcome == 'cancelled' then fields[#fields + 1] = 'out_at'; fields[#fields + 1] = now end
    for _, v in ipairs(fields) do args[#args + 1] = v end
  end
  local r = finish({key, KEYS[1], KEYS[2]}, args)
  out[i] = {r[1], r[2], r[3], r[4], r[5]}
  if r[9] then
    settled[#settled + 1] = id
    local operator = r[3] or ''
    local group = state .. ' ' .. op .. ' ' .. operator
    local ids = changed[group]
    if not ids then
      ids = {}
      changed[group] = ids
      groups[#groups + 1] = {group, state, op, operator}
    end
    ids[#ids + 1] = id
  end
  -- the intent is settled: drop it, if it is still this action's
  local sending, out_aid, pid = r[6], r[7], r[8]
  local prefix = aid .. '|'
  local drop = sending and string.sub(sending, 1, #prefix) == prefix
  if r[1] == 1 and outcome and out_aid ~= aid then
    if not r[9] then  -- final already, its outcome not started (written by an older version)
      redis.call('HSET', key, unpack(args, 8))
    end
    if outcome == 'pending' then
      if drop then redis.call('HDEL', key, 'out_at', 'sending') else redis.call('HDEL', key, 'out_at') end
      drop = false
      if pid then
        if not waiting[pid] then payments[#payments + 1] = pid end
        waiting[pid] = waiting[pid] and (waiting[pid] .. ' ' .. id) or id
      end
      due[#due + 1] = ARGV[at + 9]
      due[#due + 1] = id
    end
    if job ~= '' then
      counted[job] = counted[job] or {}
      counted[job][outcome] = (counted[job][outcome] or 0) + 1
    end
  end
  if drop then redis.call('HDEL', key, 'sending') end
end
for j = 1, #settled, 1000 do
  redis.call('SREM', KEYS[1], unpack(settled, j, math.min(j + 999, #settled)))
end
for _, g in ipairs(groups) do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'ids', table.concat(changed[g[1]], ' '),
    'state', g[2], 'op', g[3], 'ts', now, 'operator', g[4])
end
for j = 1, #payments, 500 do
  local chunk = {unpack(payments, j, math.min(j + 499, #payments))}
  local before = redis.call('HMGET', KEYS[3], unpack(chunk))
  local pairs_ = {}
  for k, pid in ipairs(chunk) do
    pairs_[#pairs_ + 1] = pid
    pairs_[#pairs_ + 1] = before[k] and (before[k] .. ' ' .. waiting[pid]) or waiting[pid]
  end
  redis.call('HSET', KEYS[3], unpack(pairs_))
end
for j = 1, #due, 1000 do
  redis.call('ZADD', KEYS[4], unpack(due, j, math.min(j + 999, #due)))
end
for job, counts in pairs(counted) do
  for outcome, n in pairs(counts) do
    redis.call('HINCRBY', ARGV[2] .. ':jobc:' .. job, outcome, n)
  end
end
return out
