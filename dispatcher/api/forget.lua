-- Forgets an Idempotency-Key's in-progress mark only if it is still this request's (its value):
-- a mark that expired and was set again by another request is never deleted.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
