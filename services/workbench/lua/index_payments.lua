-- Add entries parked before the per-payment index existed to it (store.index_payments).
-- KEYS: payments, entry keys...; ARGV: per entry key its id and its payment id (as shown).
-- An entry that is gone, or has its payment recorded already ('pid'), is left alone, so
-- running it again (two readers at once) adds nothing twice. Returns how many were added.
local added = 0
for i = 1, #KEYS - 1 do
  local key, id, payment = KEYS[1 + i], ARGV[2 * i - 1], ARGV[2 * i]
  if redis.call('EXISTS', key) == 1 and redis.call('HEXISTS', key, 'pid') == 0 then
    redis.call('HSET', key, 'pid', payment)
    local ids = redis.call('HGET', KEYS[1], payment)
    redis.call('HSET', KEYS[1], payment, ids and (ids .. ' ' .. id) or id)
    added = added + 1
  end
end
return added
