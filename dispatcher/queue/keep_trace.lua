-- Keeps the context of a delivery's last attempt in its job record, for the next attempt's span
-- to link to -- only while the record exists: a record made by this write alone would make the
-- job look queued to the unique enqueue, and the delivery would never be queued again.
-- KEYS[1] = the job's record; ARGV[1] = the field, ARGV[2] = the context. Returns 1 when kept.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
