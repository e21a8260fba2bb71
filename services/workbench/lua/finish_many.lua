-- Finish a window of entries and drop their intents. After now.lua. finish.lua's
-- transition, inline: one HMGET per entry reads what it needs, one HSET writes the
-- transition with the outcome's fields, one HDEL drops the intent (and, for a pending
-- outcome, an earlier outcome's out_at, out_detail and out_link: absent reads as empty).
-- KEYS: inflight, changes, outcomes pending (hash), outcomes due (zset), entry keys...
-- ARGV: maxlen, the DLQ's key base (its job counters: base:jobc:<job>), the number of
-- kinds of finish, then seven per kind: new state, op, detail, error, job, sent at ms,
-- outcome deadline ms; then three per entry: id, action id, its kind (1-based). A
-- window's finishes share a few kinds (one per origin and outcome): flat and short.
-- Each reply: {ok, state, operator, action, action_id} of the entry as it now is (state
-- false: no such entry), as finish.lua's - or 1, short for an entry finished as asked
-- (ok, the kind's state, this action id) whose operator and action are those of the
-- reply before it that was a table with ok 1.
-- A completed requeue or retry starts the entry's outcome (pending, see outcomes.model); a
-- completed cancel's outcome is the cancellation. Started once per action id, written
-- with the transition.
-- The window's bookkeeping: one SREM from inflight, one change event per (state, op,
-- operator) with the ids it changed, space-separated (field `ids`), one read and one
-- write of the payments' pending outcomes, one ZADD of their deadlines.
-- Safe to run twice (a run repeats it when the reply was lost in a failover): an entry
-- found in the new state with this action id is a "repeated call" (ok, no second change
-- event; a release finds it parked the same way), the outcome and the job's counters move
-- only while out_aid is not yet this action id, and the intent is dropped only while it
-- is still this action's.
local out = {}
local due = {}        -- ZADD arguments of the outcome deadlines, one call for the window
local counted = {}    -- job -> outcome -> count, one HINCRBY each for the window
local changed = {}    -- "state op operator" -> ids
local groups = {}     -- {"state op operator", state, op, operator}, in order
local settled = {}    -- ids that left inflight
local waiting = {}    -- payment -> ids now waiting for their outcome, space-separated
local payments = {}   -- those payments, in order
local kinds = tonumber(ARGV[3])
local held_by, held_for = nil, nil  -- operator, action of the last full ok reply
for i = 1, #KEYS - 4 do
  local key = KEYS[4 + i]
  local e = 3 + 7 * kinds + 3 * (i - 1)
  local id, aid = ARGV[e + 1], ARGV[e + 2]
  local at = 3 + 7 * (tonumber(ARGV[e + 3]) - 1)  -- the kind's fields: ARGV[at + 1..7]
  local state, op = ARGV[at + 1], ARGV[at + 2]
  local cur = redis.call('HMGET', key, 'state', 'operator', 'action', 'action_id', 'version',
    'sending', 'out_aid', 'pid')
  local was = cur[1]
  if not was then
    out[i] = {0, false, false, false, false}
  else
    local ok, is, moved = 0, was, false
    if cur[4] == aid then
      if was == state then
        ok = 1  -- repeated call
      elseif was == 'claimed' then
        ok, is, moved = 1, state, true
      end
    end
    if ok == 1 and held_by ~= nil and cur[2] == held_by and cur[3] == held_for then
      out[i] = 1
    else
      out[i] = {ok, is, cur[2], cur[3], cur[4]}
      if ok == 1 then held_by, held_for = cur[2], cur[3] end
    end
    local outcome = false
    if op == 'complete' then
      outcome = 'pending'
      if state == 'cancelled' then outcome = 'cancelled' end
    end
    local job = ARGV[at + 5]
    local start = ok == 1 and outcome and cur[7] ~= aid  -- the outcome starts now
    if moved then
      local version = (tonumber(cur[5]) or 0) + 1
      if outcome == 'pending' then  -- out_at, out_detail, out_link: dropped below
        redis.call('HSET', key, 'state', state, 'detail', ARGV[at + 3],
          'last_error', ARGV[at + 4], 'updated_at', now, 'version', version,
          'outcome', outcome, 'out_aid', aid, 'out_since', ARGV[at + 6], 'job', job)
      elseif outcome then
        redis.call('HSET', key, 'state', state, 'detail', ARGV[at + 3],
          'last_error', ARGV[at + 4], 'updated_at', now, 'version', version,
          'outcome', outcome, 'out_aid', aid, 'out_since', ARGV[at + 6], 'job', job,
          'out_detail', '', 'out_link', '', 'out_at', now)
      else
        redis.call('HSET', key, 'state', state, 'detail', ARGV[at + 3],
          'last_error', ARGV[at + 4], 'updated_at', now, 'version', version)
      end
      settled[#settled + 1] = id
      local operator = cur[2] or ''
      local group = state .. ' ' .. op .. ' ' .. operator
      local ids = changed[group]
      if not ids then
        ids = {}
        changed[group] = ids
        groups[#groups + 1] = {group, state, op, operator}
      end
      ids[#ids + 1] = id
    elseif start then  -- final already, its outcome not started (written by an older version)
      if outcome == 'pending' then
        redis.call('HSET', key, 'outcome', outcome, 'out_aid', aid, 'out_since', ARGV[at + 6],
          'job', job)
      else
        redis.call('HSET', key, 'outcome', outcome, 'out_aid', aid, 'out_since', ARGV[at + 6],
          'job', job, 'out_detail', '', 'out_link', '', 'out_at', now)
      end
    end
    -- the intent is settled: drop it, if it is still this action's
    local sending = cur[6]
    local drop = sending and string.sub(sending, 1, #aid + 1) == aid .. '|'
    if start and outcome == 'pending' then  -- a pending outcome has no end yet: none of
      -- an earlier one's fields (absent reads as empty), and no intent
      if drop then
        redis.call('HDEL', key, 'out_at', 'out_detail', 'out_link', 'sending')
      else
        redis.call('HDEL', key, 'out_at', 'out_detail', 'out_link')
      end
      local pid = cur[8]
      if pid then
        if not waiting[pid] then payments[#payments + 1] = pid end
        waiting[pid] = waiting[pid] and (waiting[pid] .. ' ' .. id) or id
      end
      due[#due + 1] = ARGV[at + 7]
      due[#due + 1] = id
    elseif drop then
      redis.call('HDEL', key, 'sending')
    end
    if start and job ~= '' then
      local counts = counted[job]
      if not counts then counts = {}; counted[job] = counts end
      counts[outcome] = (counts[outcome] or 0) + 1
    end
  end
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
