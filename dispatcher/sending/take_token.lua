-- Takes a token, or books the request the next free turn (the token it will use is taken now:
-- the bucket goes into debt). Returns the seconds until the request may go (``'0'``: now), as a
-- string: Redis truncates a Lua number to an integer. A booked request asking again before its
-- turn gets the time left and is not booked twice; at its turn, or up to ``grace`` seconds after,
-- it goes without a token; later than that its turn is gone and it asks like a newcomer. A request
-- that would wait more than ``ahead`` seconds is not booked (no debt) and is told to come back
-- then: what a stalled or disabled backlog can hold of the bucket is bounded.
local rate = tonumber(ARGV[1])
local grace = tonumber(ARGV[2])
local ahead = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local booked = tonumber(redis.call('GET', KEYS[2]))
if booked then
  if now < booked then return tostring(booked - now) end
  redis.call('DEL', KEYS[2])
  if now <= booked + grace then return '0' end
end
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local capacity = math.max(1, rate)
local tokens = tonumber(bucket[1]) or capacity
local at = tonumber(bucket[2]) or now
tokens = math.min(capacity, tokens + (now - at) * rate)
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate end
local beyond = wait > ahead
if not beyond then tokens = tokens - 1 end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(wait) + 3600)
if beyond then return tostring(ahead) end
if wait == 0 then return '0' end
redis.call('SET', KEYS[2], tostring(now + wait), 'EX', math.ceil(wait + grace) + 3600)
return tostring(wait)
