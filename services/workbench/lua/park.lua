-- Park a batch of messages: new entries, or the one already parked (see store.py). After now.lua.
-- KEYS: idx, fp, changes, entry keys...; ARGV: maxlen, n, then 10 per item:
-- id, redelivered, fingerprint, parked_at, summary, body, props, headers, exchange, rkey
local n = tonumber(ARGV[2])
local out = {}
for i = 1, n do
  local b = 2 + (i - 1) * 10
  local id, redelivered, fp = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local key = KEYS[3 + i]
  local status, result = 1, id
  if redis.call('EXISTS', key) == 1 then
    if redis.call('HGET', key, 'fingerprint') == fp then
      status = 0          -- this very item was parked by an earlier attempt
    else
      status = 2          -- id collision: the client picks another id
    end
  elseif redelivered == '1' then
    local known = redis.call('HGET', KEYS[2], fp)
    if known then status, result = 0, known end
  end
  if status == 1 then
    redis.call('HSET', key, 'body', ARGV[b + 6], 'props', ARGV[b + 7], 'headers', ARGV[b + 8],
      'exchange', ARGV[b + 9], 'rkey', ARGV[b + 10], 'summary', ARGV[b + 5],
      'state', 'parked', 'version', 1, 'parked_at', ARGV[b + 4], 'updated_at', now,
      'fingerprint', fp)
    redis.call('ZADD', KEYS[1], ARGV[b + 4], id)
    redis.call('HSET', KEYS[2], fp, id)
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*',
      'id', id, 'state', 'parked', 'op', 'park', 'ts', now)
  end
  out[#out + 1] = result
  out[#out + 1] = status
end
return out
