-- Settle pending outcomes of one DLQ's entries, exactly once (see outcomes.model).
-- KEYS: outcomes pending (hash), outcomes due (zset), changes (stream)
-- ARGV: the DLQ's key base, changes maxlen, JSON [[payment id, outcome, at ms, detail,
-- link, entry id], ...]: an item with an entry id settles that entry, else every pending
-- entry of the payment. An event older than the entry's send does not settle it; a
-- failed_again with a link (a new dead letter) also links an entry already failed again
-- without one. Returns [entry id, outcome, ...] of what it settled now.
local base = ARGV[1]
local items = cjson.decode(ARGV[3])
local out = {}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function drop_pending(pid, id)
  if not pid then return end
  local ids = redis.call('HGET', KEYS[1], pid)
  if not ids then return end
  local kept = {}
  for x in string.gmatch(ids, '%S+') do if x ~= id then kept[#kept + 1] = x end end
  if #kept == 0 then redis.call('HDEL', KEYS[1], pid)
  else redis.call('HSET', KEYS[1], pid, table.concat(kept, ' ')) end
end
local function changed(key, id)
  local cur = redis.call('HMGET', key, 'state', 'operator')
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*',
    'id', id, 'state', cur[1] or 'parked', 'op', 'outcome', 'ts', now, 'operator', cur[2] or '')
end
local function settle(id, a)
  if a[5] ~= '' and a[5] == id then return end  -- a dead letter is not its own outcome
  local key = base .. ':e:' .. id
  local cur = redis.call('HMGET', key, 'outcome', 'out_since', 'job', 'out_link', 'pid')
  if not cur[1] and redis.call('EXISTS', key) == 0 then  -- deleted meanwhile: forget it
    redis.call('ZREM', KEYS[2], id)
    if a[1] ~= '' then drop_pending(a[1], id) end
    return
  end
  if cur[1] == 'pending' then
    if tonumber(a[3]) < tonumber(cur[2] or '0') then return end
    redis.call('HSET', key, 'outcome', a[2], 'out_at', a[3], 'out_detail', a[4],
      'out_link', a[5])
    drop_pending(cur[5] or a[1], id)
    redis.call('ZREM', KEYS[2], id)
    if cur[3] and cur[3] ~= '' then
      local counters = base .. ':jobc:' .. cur[3]
      redis.call('HINCRBY', counters, 'pending', -1)
      redis.call('HINCRBY', counters, a[2], 1)
    end
    changed(key, id)
    out[#out + 1] = id
    out[#out + 1] = a[2]
  elseif cur[1] == 'failed_again' and a[2] == 'failed_again' and a[5] ~= ''
      and (not cur[4] or cur[4] == '') and id < a[5] then
    redis.call('HSET', key, 'out_link', a[5])
    changed(key, id)
  end
end
for _, a in ipairs(items) do
  if a[6] ~= '' then
    settle(a[6], a)
  else
    local ids = redis.call('HGET', KEYS[1], a[1])
    if ids then
      for id in string.gmatch(ids, '%S+') do settle(id, a) end
    end
  end
end
return out
