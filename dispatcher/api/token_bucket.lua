-- The API's per-token rate limit, a token bucket shared by every API process, and the API
-- tokens' generation, read in the same round trip.
-- KEYS[1]: the caller's bucket (a hash: tokens, at), KEYS[2]: the API tokens' generation
-- ARGV[1]: tokens per second (0: no limit), ARGV[2]: the bucket's size (burst)
-- Returns {1, 0, generation} when the request may go (one token taken), else {0, ms until a
-- token is there, generation} (nothing taken). Time is the server's (TIME), so every API
-- process shares one clock.
local generation = redis.call('GET', KEYS[2]) or '0'
local rate = tonumber(ARGV[1])
if rate <= 0 then
  return {1, 0, generation}
end
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now < at then
  at = now -- the clock went back (a failover to another server): refill from now on
end
tokens = math.min(burst, tokens + (now - at) * rate / 1000)
at = now
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.min(math.ceil(burst * 1000 / rate) + 1000, 86400000))
return {allowed, wait, generation}
