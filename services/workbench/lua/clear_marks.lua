-- The broker has processed the ack of these batches' deliveries: drop their "parked, ack not
-- yet confirmed" marks (see park.lua). KEYS: pending, marks hashes...
for i = 2, #KEYS do
  redis.call('DEL', KEYS[i])
  redis.call('SREM', KEYS[1], KEYS[i])
end
return #KEYS - 1
