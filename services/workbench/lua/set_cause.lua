-- Set an entry's cause when the flow's failure event came after it was parked.
-- KEYS: entry, changes; ARGV: id, cause, cause source, failure group, maxlen
-- Never replaces a cause taken from the flow (the first one found stands); returns the old
-- failure group when the cause changed, false otherwise.
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local row = redis.call('HMGET', KEYS[1], 'cause_src', 'fgroup', 'state', 'operator')
if row[1] == 'flow' then return false end
redis.call('HSET', KEYS[1], 'cause', ARGV[2], 'cause_src', ARGV[3], 'fgroup', ARGV[4])
local fields = {'id', ARGV[1], 'state', row[3] or 'parked', 'op', 'cause', 'ts', now}
if row[4] then fields[#fields + 1] = 'operator'; fields[#fields + 1] = row[4] end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', unpack(fields))
return row[2] or ''
