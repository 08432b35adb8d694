-- One change of an endpoint's breaker, made only if nobody changed it since it was read (a
-- compare-and-set on its generation), so exactly one worker wins an opening or a closing.
-- KEYS[1] = the breaker (a hash), KEYS[2] = its window; ARGV[1] = the change: 'open' (from
-- closed), 'probe' (take the half-open breaker's turn), 'release' (give the turn back), 'reopen'
-- or 'close' (a probe's result); ARGV[2] = the generation read; ARGV[3] = now in seconds ('' for
-- Redis's clock); ARGV[4] = the probing delivery's request_id; ARGV[5] = seconds: how long it opens
-- ('open', 'reopen') or how long the probe's turn lasts ('probe').
-- Returns {1, now, open_until, since} when the change was made (times as text), else {0}.
local now
if ARGV[3] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[3])
end
local key, change, rid, seconds = KEYS[1], ARGV[1], ARGV[4], tonumber(ARGV[5])
local generation = tonumber(redis.call('HGET', key, 'generation') or '0')
if generation ~= tonumber(ARGV[2]) then return {0} end
local open = redis.call('HGET', key, 'open') == '1'
local function opened(since)
  redis.call('HSET', key, 'open', '1', 'generation', generation + 1, 'since', since,
    'opened_at', tostring(now), 'open_until', tostring(now + seconds), 'open_seconds', seconds)
  redis.call('HDEL', key, 'probe', 'probe_until')
  redis.call('DEL', KEYS[2])
  return {1, tostring(now), tostring(now + seconds), since}
end
if change == 'open' then
  if open then return {0} end
  return opened(tostring(now))
end
if not open then return {0} end
local probe = redis.call('HGET', key, 'probe')
if change == 'probe' then
  if now < tonumber(redis.call('HGET', key, 'open_until')) then return {0} end
  local turn_until = tonumber(redis.call('HGET', key, 'probe_until') or '0')
  if probe and probe ~= rid and turn_until > now then return {0} end
  redis.call('HSET', key, 'probe', rid, 'probe_until', tostring(now + seconds))
  return {1, tostring(now), redis.call('HGET', key, 'open_until'), redis.call('HGET', key, 'since')}
end
if probe ~= rid then return {0} end
if change == 'release' then
  redis.call('HDEL', key, 'probe', 'probe_until')
  return {1, tostring(now), redis.call('HGET', key, 'open_until'), redis.call('HGET', key, 'since')}
end
if change == 'reopen' then
  return opened(redis.call('HGET', key, 'since'))
end
if change == 'close' then
  local since = redis.call('HGET', key, 'since')
  redis.call('HSET', key, 'open', '0', 'generation', generation + 1)
  redis.call('HDEL', key, 'since', 'opened_at', 'open_until', 'open_seconds', 'probe', 'probe_until')
  redis.call('DEL', KEYS[2])
  return {1, tostring(now), false, since}
end
return redis.error_reply('breaker_move: unknown change ' .. change)
