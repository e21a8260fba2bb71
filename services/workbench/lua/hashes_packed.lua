-- The whole stored hashes of several entries in one call, each packed in one string (a
-- reply of one bulk string per entry parses and pickles far cheaper than one per field).
-- KEYS: entry keys; returns per key '' (no entry) or: the number N of items (4 bytes, big
-- endian), the N items' lengths (4 bytes each), then the items: field, value, field, ...
local out = {}
for i = 1, #KEYS do
  local items = redis.call('HGETALL', KEYS[i])
  local n = #items
  if n == 0 then
    out[i] = ''
  else
    local lengths = {}
    for j = 1, n do
      lengths[j] = struct.pack('>I4', #items[j])
    end
    out[i] = struct.pack('>I4', n) .. table.concat(lengths) .. table.concat(items)
  end
end
return out
