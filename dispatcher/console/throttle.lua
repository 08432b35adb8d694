-- The login throttle: counts one sign-in attempt for a name and for a client address, or refuses
-- it, atomically, before any password is checked.
-- KEYS[1]: the name's attempts, KEYS[2]: the address's attempts (sorted sets, scored in ms)
-- ARGV[1]: now (ms), ARGV[2]: window (ms), ARGV[3]: the name's limit, ARGV[4]: the address's
-- limit, ARGV[5]: a member unique to this attempt
-- Returns 0 when the attempt is counted (its password may be checked), else the ms until the
-- fuller of the two windows has room again (nothing is counted then).
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limits = {tonumber(ARGV[3]), tonumber(ARGV[4])}
local wait = 0
for i = 1, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limits[i] then
    local entry = redis.call('ZRANGE', KEYS[i], count - limits[i], count - limits[i], 'WITHSCORES')
    local free_at = tonumber(entry[2]) + window
    if free_at - now > wait then
      wait = free_at - now
    end
  end
end
if wait > 0 then
  return wait
end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[i], window)
end
return 0
