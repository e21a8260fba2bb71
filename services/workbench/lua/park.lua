-- Park a batch of messages: new entries, or the one already parked (see store.py). After now.lua.
-- KEYS: idx, fp, changes, pending, marks, payments, entry keys...; ARGV: maxlen, n, own, then
-- 15 per item: id, redelivered, fingerprint, parked_at, summary, body, props, headers, exchange,
-- rkey, payment id ("" for none), cause, cause source, failure group, the requeue's encoded
-- properties (field rq, see republish.py; "" for none)
-- A new entry adds one "parked, ack not yet confirmed" mark for its fingerprint to this
-- batch's marks hash (listed in pending). A redelivered message consumes one mark of a batch
-- of another parker session (own: the key prefix of this session's batches, whose marks
-- belong to deliveries it still holds) instead of being parked again. Status per item:
-- 1 parked now, 3 parked by an earlier attempt of this very item, 0 recognised, 2 id collision.
local n, own = tonumber(ARGV[2]), ARGV[3]
local out = {}
local function consume(fp)
  for _, batch in ipairs(redis.call('SMEMBERS', KEYS[4])) do
    if string.sub(batch, 1, #own) ~= own then
      local marks = tonumber(redis.call('HGET', batch, fp) or '0')
      if marks > 0 then
        if marks == 1 then redis.call('HDEL', batch, fp) else redis.call('HINCRBY', batch, fp, -1) end
        if redis.call('EXISTS', batch) == 0 then redis.call('SREM', KEYS[4], batch) end
        return true
      end
      if redis.call('EXISTS', batch) == 0 then redis.call('SREM', KEYS[4], batch) end
    end
  end
  return false
end
local marked = false
for i = 1, n do
  local b = 3 + (i - 1) * 15
  local id, redelivered, fp = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local key = KEYS[6 + i]
  local status, result = 1, id
  if redis.call('EXISTS', key) == 1 then
    if redis.call('HGET', key, 'fingerprint') == fp then
      status = 3          -- this very item was parked by an earlier attempt
    else
      status = 2          -- id collision: the client picks another id
    end
  elseif redelivered == '1' and consume(fp) then
    status, result = 0, (redis.call('HGET', KEYS[2], fp) or id)
  end
  if status == 1 then
    redis.call('HSET', key, 'body', ARGV[b + 6], 'props', ARGV[b + 7], 'headers', ARGV[b + 8],
      'exchange', ARGV[b + 9], 'rkey', ARGV[b + 10], 'summary', ARGV[b + 5],
      'state', 'parked', 'version', 1, 'parked_at', ARGV[b + 4], 'updated_at', now,
      'fingerprint', fp, 'cause', ARGV[b + 12], 'cause_src', ARGV[b + 13],
      'fgroup', ARGV[b + 14], 'rq', ARGV[b + 15])
    local payment = ARGV[b + 11]
    if payment ~= '' then  -- the payment's entries: a space-separated list of ids
      redis.call('HSET', key, 'pid', payment)
      local ids = redis.call('HGET', KEYS[6], payment)
      redis.call('HSET', KEYS[6], payment, ids and (ids .. ' ' .. id) or id)
    end
    redis.call('ZADD', KEYS[1], ARGV[b + 4], id)
    redis.call('HSET', KEYS[2], fp, id)
    redis.call('HINCRBY', KEYS[5], fp, 1)
    marked = true
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*',
      'id', id, 'state', 'parked', 'op', 'park', 'ts', now)
  end
  out[#out + 1] = result
  out[#out + 1] = status
end
if marked then redis.call('SADD', KEYS[4], KEYS[5]) end
return out
