-- Releases the alerts' lock only if this holder still holds it (its token is the value): a
-- holder whose lock expired and was taken by another process never deletes the other's.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
