-- The server's time in epoch milliseconds, as a string: `now`, for the files after this one.
local t = redis.call('TIME')
local now = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
