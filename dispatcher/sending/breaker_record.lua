-- Counts attempts' results in an endpoint's breaker window and says what the window holds.
-- KEYS[1] = the breaker (a hash), KEYS[2] = its window (a hash of per-second counts: 'a:<second>'
-- attempts, 'f:<second>' retryable failures); ARGV[1] = now in seconds ('' for Redis's clock),
-- ARGV[2] = the window in seconds, ARGV[3] = attempts counted, ARGV[4] = how many of them failed.
-- Counts older than the window are dropped. Returns {attempts, failures, open, generation}:
-- whether it opens is the policy's to say, and the opening is breaker_move.lua's (a CAS on
-- the generation read here).
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local window = tonumber(ARGV[2])
local second = math.floor(now)
redis.call('HINCRBY', KEYS[2], 'a:' .. second, tonumber(ARGV[3]))
if tonumber(ARGV[4]) > 0 then
  redis.call('HINCRBY', KEYS[2], 'f:' .. second, tonumber(ARGV[4]))
end
redis.call('EXPIRE', KEYS[2], window + 60)
local attempts, failures = 0, 0
local fields = redis.call('HGETALL', KEYS[2])
for i = 1, #fields, 2 do
  local kind, at = string.match(fields[i], '^(%a):(%-?%d+)$')
  if at == nil or tonumber(at) <= second - window then
    redis.call('HDEL', KEYS[2], fields[i])
  elseif kind == 'a' then
    attempts = attempts + tonumber(fields[i + 1])
  else
    failures = failures + tonumber(fields[i + 1])
  end
end
local state = redis.call('HMGET', KEYS[1], 'open', 'generation')
return {attempts, failures, state[1] or '0', state[2] or '0'}
